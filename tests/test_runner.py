"""The runner's parsing and refusals: overrides, sweep expansion, registries, bad input.

Everything here runs in-process and (but for the corrupt-checkpoint cases)
stops before anything compiles.
"""

import json
import os

import pytest

from ebm_gan import launch
from ebm_gan import runlog
from ebm_gan import sweep
from ebm_gan.registry import ConfigError, Registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = os.path.join(ROOT, "experiments", "configs", "default.py")


# --- overrides -------------------------------------------------------------------------------

def test_parse_args_splits_flags_and_overrides():
  path, overrides, options = launch.parse_args(
      ["--config", "x.py", "--config.optimizer.lr=0.1", "--workdir=w", "--resume",
       "--sweep", "seed=0:2", "--sweep=optimizer.name=gda,ogda", "--sequential",
       "--no-progress"], DEFAULT)
  assert path == "x.py" and overrides == [("optimizer.lr", "0.1")]
  assert options == {"workdir": "w", "progress": False, "resume": True,
                     "sweep": ["seed=0:2", "optimizer.name=gda,ogda"], "no_sweep": False,
                     "sequential": True}


def test_python_values_are_type_checked():
  c = launch.resolve_config(DEFAULT, [("optimizer.lr", 0.5), ("seed", 3),
                                      ("model.energy_hidden", [4, 4])])
  assert c.optimizer.lr == 0.5 and c.seed == 3 and c.model.energy_hidden == (4, 4)
  with pytest.raises(ConfigError, match="wrong type"):
    launch.resolve_config(DEFAULT, [("optimizer.lr", "fast")])


def test_runner_fields_have_defaults():
  c = launch.resolve_config(DEFAULT, [("checkpoint_every", "50"), ("picture_every", "0")])
  assert c.checkpoint_every == 50 and c.picture_every == 0
  assert c.max_to_keep >= 1 and c.tensorboard_every >= 0


# --- sweeps -----------------------------------------------------------------------------------

def test_grid_is_the_product_first_axis_slowest():
  members = sweep.expand_grid(["optimizer.name=gda,ogda", "optimizer.lr=1e-3,1e-4",
                               "seed=0:4"])
  assert len(members) == 16
  assert members[0] == [("optimizer.name", "gda"), ("optimizer.lr", "1e-3"), ("seed", "0")]
  assert members[-1] == [("optimizer.name", "ogda"), ("optimizer.lr", "1e-4"), ("seed", "3")]


@pytest.mark.parametrize("spec, key, values", [
    ("seed=0:4", "seed", ["0", "1", "2", "3"]),
    ("seed=1:7:3", "seed", ["1", "4"]),
    ("config.seed=5", "seed", ["5"]),
    ("model.energy_hidden=(8, 8),(16,)", "model.energy_hidden", ["(8, 8)", "(16,)"]),
    ("dataset=8gaussians, swissroll", "dataset", ["8gaussians", "swissroll"]),
])
def test_parse_axis(spec, key, values):
  assert sweep.parse_axis(spec) == (key, values)


@pytest.mark.parametrize("specs, words", [
    (["seed"], ["not a sweep axis", "KEY=V1,V2"]),
    (["seed=4:0"], ["empty"]),
    (["optimizer.lr=1e-3,,1e-4"], ["empty value"]),
    (["seed=0,1", "seed=2"], ["twice"]),
])
def test_bad_grids_are_refused(specs, words):
  with pytest.raises(ConfigError) as e:
    sweep.expand_grid(specs)
  assert all(w in str(e.value) for w in words), str(e.value)


def _write_config(tmp_path, body):
  path = tmp_path / "swept.py"
  path.write_text(f"import sys\nsys.path.insert(0, {os.path.dirname(DEFAULT)!r})\n"
                  "from default import get_config, finalize\n" + body)
  return str(path)


def test_config_defined_sweep_and_its_product_with_a_grid(tmp_path):
  path = _write_config(tmp_path, (
      "def sweep(add):\n"
      "  for lr in (1e-3, 1e-4):\n"
      "    add(**{'optimizer.lr': lr}, seed=1)\n"))
  module = launch.load_config_module(path)
  members = sweep.from_config(module)
  assert members == [[("optimizer.lr", 1e-3), ("seed", 1)], [("optimizer.lr", 1e-4), ("seed", 1)]]
  both = sweep.combine(members, sweep.expand_grid(["optimizer.name=gda,ogda"]))
  assert len(both) == 4 and both[1] == members[0] + [("optimizer.name", "ogda")]
  configs = [launch.resolve_config(path, m, module) for m in both]
  assert [c.optimizer.lr for c in configs] == [1e-3, 1e-3, 1e-4, 1e-4]
  assert sweep.member_name(3, both[3]) == "003_optimizer.lr=0.0001_seed=1_optimizer.name=ogda"


def test_vectorised_grouping():
  from ebm_gan import sweep_vmap  # pylint: disable=g-import-not-at-top
  members = sweep.expand_grid(["optimizer.name=gda,ogda", "optimizer.lr=1e-3,1e-4",
                               "seed=0:2"])
  configs = [launch.resolve_config(DEFAULT, m) for m in members]
  assert sweep_vmap.plan(configs) == [[0, 1, 2, 3], [4, 5, 6, 7]]  # seeds and lrs vmapped


def test_sweep_table(tmp_path):
  rows = [sweep.table_row("000_seed=0", [("seed", "0")], {"status": "ok", "wall_s": 1.5,
                                                           "l3": 0.25, "samples": [1]}),
          sweep.table_row("001_seed=1", [("seed", "1")], {"status": "failed", "error": "E"})]
  sweep.write_table(str(tmp_path), rows)
  csv_text = (tmp_path / "sweep.csv").read_text().splitlines()
  assert csv_text[0] == "member,seed,status,wall_s,l3,error"
  assert csv_text[2] == "001_seed=1,1,failed,,,E"
  md = (tmp_path / "sweep.md").read_text()
  assert "| 000_seed=0 | 0 | ok | 1.5 | 0.25 |  |" in md
  assert sweep.exit_status(rows) == "failed"


# --- registries -------------------------------------------------------------------------------

def test_registry_refuses_unknown_names_and_lists_valid_ones():
  r = Registry("widget")
  r.register("a", 1)
  r.register("b", 2)
  assert r.get("a") == 1 and list(r) == ["a", "b"] and "b" in r
  with pytest.raises(ConfigError, match=r"thing='c' is not a known widget; allowed: a, b\."):
    r.get("c", key="thing")
  with pytest.raises(ValueError, match="registered twice"):
    r.register("a", 3)


# --- bad input through the command line (in-process: same code path as the CLI) --------------

def _main(capsys, *args):
  rc = launch.main(list(args), DEFAULT)
  err = capsys.readouterr().err
  return rc, err


def _corrupt_workdir(tmp_path, kind):
  workdir = tmp_path / "corrupt"
  (workdir / "checkpoints").mkdir(parents=True)
  if kind == "garbage":  # a step folder holding something else
    (workdir / "checkpoints" / "40").mkdir()
    (workdir / "checkpoints" / "40" / "default").write_text("not a checkpoint")
  elif kind == "file":
    os.rmdir(workdir / "checkpoints")
    (workdir / "checkpoints").write_text("oops")
  return str(workdir)


TINY = ["--config.steps=20", "--config.steps_per_dispatch=10", "--config.batch_size=8",
        "--config.model.energy_hidden=(4,)", "--config.model.generator_hidden=(4,)",
        "--config.penalty.name=none", "--config.eval_samples=50", "--no-progress"]

BAD_INPUTS = [
    (["--config.batchsize=3"], ["batchsize", "batch_size"]),                  # unknown key
    (["--config.optimizer.nam=ogda"], ["optimizer.nam"]),                     # unknown nested key
    (["--config.batch_size=abc"], ["integer"]),                               # wrong type
    (["--config.optimizer.lr=fast"], ["number"]),                             # wrong type
    (["--config.smoke=maybe"], ["true or false"]),                            # wrong type
    (["--config.model=3"], ["group"]),                                        # group, not value
    (["--config.dataset=mnist2"], ["dataset='mnist2'", "25gaussians"]),      # unknown name
    (["--config.optimizer.name=adamw"], ["optimizer.name='adamw'", "ogda"]),  # unknown name
    (["--config.scheme=leapfrog"], ["scheme='leapfrog'", "extragradient"]),   # unknown name
    (["--config.entropy.name=magic"], ["entropy.name='magic'"]),              # unknown name
    (["--config.program=nothing"], ["program='nothing'", "toy_games"]),       # unknown program
    (["--config.optimizer.lr=-1e-3"], ["optimizer.lr=-0.001", "positive"]),  # negative lr
    (["--config.batch_size=0"], ["batch_size=0", "positive integer"]),       # zero batch
    (["--config.steps=-5"], ["steps=-5"]),                                    # negative steps
    (["--config.checkpoint_every=0"], ["checkpoint_every=0"]),               # runner field
    (["--config.max_to_keep=-1"], ["max_to_keep=-1"]),                        # runner field
    (["--config.picture_every=-2"], ["picture_every=-2", ">= 0"]),            # runner field
    (["--config", "nowhere.py"], ["no such config file"]),                    # missing file
    (["--bogus"], ["unknown argument", "usage"]),                             # unknown flag
    (["--workdir"], ["--workdir needs a value"]),                             # missing value
    (["--workdir="], ["non-empty"]),                                          # empty value
    (["--workdir=/proc/forbidden/run"], ["not a writable folder"]),           # unwritable
    (["--sweep", "seed"], ["not a sweep axis"]),                              # bad sweep axis
    (["--sweep", "seed=3:1"], ["empty"]),                                     # empty range
    (["--sweep", "optimizer.lr=1e-3,-1e-3"], ["sweep member 1", "optimizer.lr=-0.001"]),
    (["--sweep", "optimizer.lrr=1e-3"], ["sweep member 0", "optimizer.lrr", "optimizer.lr"]),
    (["--sweep", "seed=0,1", "--no-sweep"], ["contradict"]),
    (["--sweep", "seed=1,1"], ["members 0 and 1 are the same run"]),         # duplicate member
    (["--config", "{swept}", "--sweep", "seed=5"], ["sets 'seed'", "--no-sweep"]),
    (["--resume", "--workdir", "{tmp}/empty"], ["no checkpoint to resume"]),  # nothing there
    (["--workdir", "{tmp}/a_file"], ["is a file"]),                           # workdir is a file
    (["--config", "{tmp}/broken.py"], ["could not be loaded", "SyntaxError"]),  # broken config
    (["--config", "{tmp}/noget.py"], ["defines no get_config"]),             # no get_config
    (["--workdir", "{corrupt:file}"] + TINY, ["checkpoint folder", "is a file"]),
    (["--workdir", "{corrupt:garbage}"] + TINY, ["checkpoint folder", "cannot be used"]),
]


@pytest.mark.parametrize("args, words", BAD_INPUTS)
def test_bad_input_exits_2_with_one_paragraph(tmp_path, capsys, args, words):
  (tmp_path / "empty").mkdir()
  (tmp_path / "a_file").write_text("x")
  (tmp_path / "broken.py").write_text("def get_config(:\n")
  (tmp_path / "noget.py").write_text("X = 1\n")
  (tmp_path / "swept.py").write_text(
      "from experiments.configs.optimizer_sweep import get_config, finalize, sweep\n")
  args = [a.replace("{tmp}", str(tmp_path)).replace("{swept}", str(tmp_path / "swept.py"))
          for a in args]
  args = [_corrupt_workdir(tmp_path, a[len("{corrupt:"):-1]) if a.startswith("{corrupt:") else a
          for a in args]
  rc, err = _main(capsys, *args)
  assert rc == launch.EXIT_USER_ERROR, err
  assert err.startswith("error: ") and err.count("\n") == 1, err  # one paragraph
  assert "Traceback" not in err
  for w in words:
    assert w in err, err


def test_resume_refuses_another_config(tmp_path, capsys):
  workdir = tmp_path / "run"
  (workdir / "checkpoints" / "10").mkdir(parents=True)
  config = launch.resolve_config(DEFAULT, [("optimizer.lr", "0.5")])
  (workdir / "config.json").write_text(config.to_json_best_effort())
  from ebm_gan import experiment  # pylint: disable=g-import-not-at-top
  with pytest.raises(ConfigError, match=r"another config \(optimizer.lr: 0.5 -> 0.25\)"):
    experiment.check_resumable(str(workdir), launch.resolve_config(DEFAULT, [("optimizer.lr", "0.25")]))
  experiment.check_resumable(str(workdir), launch.resolve_config(
      DEFAULT, [("optimizer.lr", "0.5"), ("steps", "99999")]))  # more steps: fine


def test_metrics_log_truncates_to_the_checkpoint(tmp_path):
  log = runlog.MetricsLog(str(tmp_path), tensorboard_every=0)
  log.write({"step": s, "l3": 0.5 * s} for s in range(1, 6))
  log.close()
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('{"step": 6, "l3"')  # a row cut short by a kill
  log = runlog.MetricsLog(str(tmp_path), resume_step=3, tensorboard_every=0)
  log.write([{"step": 4, "l3": 2.0}])
  log.close()
  assert [r["step"] for r in runlog.read_metrics(str(tmp_path))] == [1, 2, 3, 4]


def test_provenance(tmp_path):
  config = launch.resolve_config(DEFAULT, [])
  runlog.write_provenance(str(tmp_path), config, argv=["x"])
  info = json.load(open(tmp_path / "provenance.json"))
  assert info["versions"]["jax"] and info["argv"] == ["x"] and info["git_revision"]
  assert json.load(open(tmp_path / "config.json"))["optimizer"]["name"] == config.optimizer.name


def test_the_sweep_config_file_declares_its_members():
  path = os.path.join(ROOT, "experiments", "configs", "optimizer_sweep.py")
  module = launch.load_config_module(path)
  members = sweep.from_config(module)
  assert len(members) == 12
  assert members[0] == [("optimizer.name", "gda"), ("optimizer.lr", 1e-3), ("seed", 0)]
  from ebm_gan import sweep_vmap  # pylint: disable=g-import-not-at-top
  configs = [launch.resolve_config(path, m, module) for m in members]
  assert sweep_vmap.plan(configs) == [list(range(6)), list(range(6, 12))]


def test_resume_without_workdir_takes_the_newest_run(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  for name in ("default-20250101-000000", "default-20260101-000000", "other-20270101-000000"):
    (tmp_path / "runs" / name / "checkpoints" / "10").mkdir(parents=True)
  options = {"workdir": None, "resume": True}
  assert launch.choose_workdir(options, DEFAULT, is_sweep=False) == os.path.join(
      "runs", "default-20260101-000000")
  with pytest.raises(ConfigError, match="found no runs/default-sweep-<timestamp>"):
    launch.choose_workdir(options, DEFAULT, is_sweep=True)

"""The runner's pieces: sweep expansion and grouping, the sweep table, registries, the run
folder's records and resume refusals. Everything here runs in-process and compiles nothing,
but for the TensorBoard import check (a fresh interpreter)."""

import json
import os
import subprocess
import sys

import pytest

from ebm_gan.runner import cli
from ebm_gan.runner import loop
from ebm_gan.runner import record
from ebm_gan.runner import sweep
from ebm_gan.runner.programs import ebm_gan as ebm_gan_program
from ebm_gan.runner.registry import ConfigError, Registry
from tiny_runs import DEFAULT, ROOT


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
  module = cli.load_config_module(path)
  members = sweep.from_config(module)
  assert members == [[("optimizer.lr", 1e-3), ("seed", 1)], [("optimizer.lr", 1e-4), ("seed", 1)]]
  both = sweep.combine(members, sweep.expand_grid(["optimizer.name=gda,ogda"]))
  assert len(both) == 4 and both[1] == members[0] + [("optimizer.name", "ogda")]
  configs = [cli.resolve_config(path, m, module) for m in both]
  assert [c.optimizer.lr for c in configs] == [1e-3, 1e-3, 1e-4, 1e-4]
  assert sweep.member_name(3, both[3]) == "003_optimizer.lr=0.0001_seed=1_optimizer.name=ogda"


def test_only_selects_members_by_their_override_values():
  members = [[("label", "A"), ("optimizer.lr", 1e-3), ("seed", 0)],
             [("label", "A"), ("optimizer.lr", 1e-4), ("seed", 1)],
             [("label", "B (x)"), ("optimizer.lr", 1e-3), ("seed", 1)]]
  assert sweep.select(members, []) is members
  assert sweep.select(members, ["label=B (x)"]) == [members[2]]
  # a command-line number matches the member's Python value it spells (1e-3 is 0.001)
  assert sweep.select(members, ["optimizer.lr=0.001"]) == [members[0], members[2]]
  assert sweep.select(members, ["seed=1:2", "label=A,C"]) == [members[1]]  # each must match
  assert sweep.select(sweep.expand_grid(["seed=0:4"]), ["seed=1,3"]) == [[("seed", "1")],
                                                                         [("seed", "3")]]


def _plan(configs):
  return sweep.plan([ebm_gan_program] * len(configs), [ebm_gan_program.build(c) for c in configs])


def test_vectorised_grouping():
  members = sweep.expand_grid(["optimizer.name=gda,ogda", "optimizer.lr=1e-3,1e-4",
                               "seed=0:2"])
  configs = [cli.resolve_config(DEFAULT, m) for m in members]
  assert _plan(configs) == [[0, 1, 2, 3], [4, 5, 6, 7]]  # seeds and lrs vmapped


def test_sweep_table(tmp_path):
  rows = [sweep.table_row("000_seed=0", [("seed", "0")], {"status": "ok", "wall_s": 1.5,
                                                           "l3": 0.25, "samples": [1]}),
          sweep.table_row("001_seed=1", [("seed", "1")], {"status": "failed", "error": "E"})]
  sweep.write_table(str(tmp_path), rows)
  csv_text = (tmp_path / "sweep.csv").read_text().splitlines()
  assert csv_text[0] == "member,seed,status,wall_s,l3,error"
  assert csv_text[2] == "001_seed=1,1,failed,,,E"
  md = (tmp_path / "sweep.md").read_text()
  cells = [[c.strip() for c in line.split("|")[1:-1]] for line in md.splitlines()]
  assert cells[0] == ["member", "seed", "status", "wall_s", "l3", "error"]
  assert cells[2] == ["000_seed=0", "0", "ok", "1.5", "0.25", ""]
  assert len({len(line) for line in md.splitlines()}) == 1  # columns padded to one width
  assert sweep.exit_status(rows) == "failed"


# --- registries -------------------------------------------------------------------------------

def test_registry_refuses_unknown_names_and_lists_valid_ones():
  r = Registry("widget")
  r.register("a", 1)
  r.register("b", 2)
  assert r.get("a", key="thing") == 1 and list(r) == ["a", "b"] and "b" in r
  with pytest.raises(ConfigError, match=r"thing='c' is not a known widget; allowed: a, b\."):
    r.get("c", key="thing")
  with pytest.raises(ValueError, match="registered twice"):
    r.register("a", 3)


def test_resume_refuses_another_config(tmp_path, capsys):
  workdir = tmp_path / "run"
  (workdir / "checkpoints" / "10").mkdir(parents=True)
  constant = [("optimizer.schedule", "constant"), ("penalty.schedule", "constant")]
  config = cli.resolve_config(DEFAULT, constant + [("optimizer.lr", "0.5")])
  (workdir / "config.json").write_text(config.to_json_best_effort())
  with pytest.raises(ConfigError, match=r"another config \(optimizer.lr: 0.5 -> 0.25\)"):
    record.check_resumable(str(workdir),
                           cli.resolve_config(DEFAULT, constant + [("optimizer.lr", "0.25")]))
  record.check_resumable(str(workdir), cli.resolve_config(
      DEFAULT, constant + [("optimizer.lr", "0.5"), ("steps", "99999")]))  # more steps: fine


def test_resume_with_other_steps_is_refused_when_the_rates_decay_over_them(tmp_path):
  workdir = tmp_path / "run"
  workdir.mkdir()
  decaying = [("optimizer.schedule", "cosine"), ("evaluation.mcmc_steps", "0")]
  config = cli.resolve_config(DEFAULT, decaying)
  (workdir / "config.json").write_text(config.to_json_best_effort())
  with pytest.raises(ConfigError, match="learning rates and penalty weight decay over "
                     "steps=48000.*change them mid-run"):
    record.check_resumable(str(workdir), cli.resolve_config(DEFAULT, decaying + [("steps", "999")]))
  only_penalty = [("optimizer.schedule", "constant"), ("penalty.schedule", "linear")]
  (workdir / "config.json").write_text(cli.resolve_config(DEFAULT, only_penalty).to_json_best_effort())
  with pytest.raises(ConfigError, match=r"whose penalty weight decays over.*penalty.schedule='linear'"):
    record.check_resumable(str(workdir), cli.resolve_config(DEFAULT, only_penalty + [("steps", "9")]))
  (workdir / "config.json").write_text(cli.resolve_config(DEFAULT, decaying).to_json_best_effort())
  # evaluation-only settings may change: a finished run can be evaluated again
  record.check_resumable(str(workdir), cli.resolve_config(
      DEFAULT, decaying[:1] + [("evaluation.mcmc_steps", "100")]))


def test_metrics_log_truncates_to_the_checkpoint(tmp_path):
  log = record.MetricsLog(str(tmp_path), tensorboard_every=0)
  log.write({"step": s, "l3": 0.5 * s} for s in range(1, 6))
  log.close()
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('{"step": 6, "l3"')  # a row cut short by a kill
  log = record.MetricsLog(str(tmp_path), resume_step=3, tensorboard_every=0)
  log.write([{"step": 4, "l3": 2.0}])
  log.close()
  assert [r["step"] for r in record.read_metrics(str(tmp_path))] == [1, 2, 3, 4]


def test_tensorboard_scalars_are_written_without_importing_torch(tmp_path):
  """tensorboardX imports torch wherever it is installed (4.6 s per launch here); the runner
  keeps it out, writes the scalars all the same, and leaves ``import torch`` working."""
  script = f"""
import importlib.util, os, sys
from ebm_gan.runner import record
log = record.MetricsLog({str(tmp_path)!r}, tensorboard_every=2)
log.write({{"step": s, "loss_energy_tag": 0.5 * s}} for s in range(1, 5))
log.close()
assert "torch" not in sys.modules, "tensorboardX imported torch"
folder = os.path.join({str(tmp_path)!r}, "tensorboard")
events = os.listdir(folder)
assert len(events) == 1 and events[0].startswith("events.out.tfevents"), events
data = open(os.path.join(folder, events[0]), "rb").read()
assert data.count(b"loss_energy_tag") == 2, data  # steps 2 and 4
if importlib.util.find_spec("torch") is not None:
  import torch  # the import is blocked only while tensorboardX loads
print("ok")
"""
  r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                     cwd=ROOT, timeout=300)
  assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_provenance(tmp_path):
  config = cli.resolve_config(DEFAULT, [])
  record.write_provenance(str(tmp_path), config, argv=["x"])
  info = json.load(open(tmp_path / "provenance.json"))
  assert info["versions"]["jax"] and info["argv"] == ["x"] and info["git_revision"]
  # the tests' 4 fake CPU devices (tests/conftest.py), and no matmul precision set
  assert info["devices"] == "4 × cpu"
  assert json.load(open(tmp_path / "config.json"))["optimizer"]["name"] == config.optimizer.name


def test_provenance_keeps_the_first_launch_and_appends_each_resume(tmp_path):
  config = cli.resolve_config(DEFAULT, [])
  record.write_provenance(str(tmp_path), config, argv=["first"])
  record.write_provenance(str(tmp_path), config, argv=["resume"], from_step=20)
  record.write_provenance(str(tmp_path), config, argv=["evaluate"], from_step=40)
  info = record.read_provenance(str(tmp_path))
  assert info["argv"] == ["first"] and info["from_step"] == 0
  assert [(r["argv"], r["from_step"]) for r in info["resumed"]] == [(["resume"], 20),
                                                                     (["evaluate"], 40)]
  record.write_provenance(str(tmp_path), config, argv=["again"])  # a fresh run: a new history
  assert "resumed" not in record.read_provenance(str(tmp_path))


class _FakeClock:
  def __init__(self, monkeypatch, t):
    self.t = t
    monkeypatch.setattr(loop.time, "perf_counter", lambda: self.t)


def test_the_wall_clock_sums_segments_up_to_the_restored_checkpoint(tmp_path, monkeypatch):
  """Times by hand: a run saves at steps 10 and 20 (10 s and 25 s in), is killed 5 s later;
  resumed from step 20 it goes on from 25 s (the 5 lost seconds are not counted, those steps
  are run again); resumed instead from step 10 (step 20 set aside) it goes on from 10 s."""
  fake, folder = _FakeClock(monkeypatch, 100.0), str(tmp_path)
  first = loop.WallClock(folder, 0)
  for fake.t, step in ((110.0, 10), (125.0, 20)):
    first.save(step)
  fake.t = 200.0
  resumed = loop.WallClock(folder, 20)
  fake.t = 206.0
  assert (resumed.from_step, resumed.before, resumed.segment(), resumed.total()) == (0, 25.0, 6.0,
                                                                                     31.0)
  resumed.save(30)
  older = loop.WallClock(folder, 10)
  fake.t = 209.0
  older.save(20)
  saved = json.load(open(tmp_path / loop.WALL_RECORD))
  assert saved == {"from_step": 0, "at_step": {"0": 0.0, "10": 10.0, "20": 13.0}}
  for text in (None, "{not json", '{"from_step": 0, "at_step": {"0": 0.0}}'):  # no value for 20
    if text is None:
      os.remove(tmp_path / loop.WALL_RECORD)
    else:
      open(tmp_path / loop.WALL_RECORD, "w").write(text)
    clock = loop.WallClock(folder, 20)
    assert (clock.from_step, clock.before) == (20, 0.0)
    clock = loop.WallClock(folder, 20, fallback=(0, 50.0))  # a finished run's summary
    assert (clock.from_step, clock.before) == (0, 50.0)
  clock = loop.WallClock(folder, 0, fallback=(0, 50.0))  # a fresh run starts from nothing
  assert (clock.from_step, clock.before) == (0, 0.0)
  fake.t += 3.0
  clock.save(20)
  clock = loop.WallClock(folder, 20, fallback=(0, 50.0))  # the record wins over the summary
  assert (clock.from_step, clock.before) == (0, 3.0)


def test_a_finished_summary_gives_its_training_wall_time(tmp_path):
  def summary(**fields):
    with open(tmp_path / "summary.json", "w") as f:
      json.dump({"status": "ok", "steps_done": 40, "wall_s": 12.5, **fields}, f)
  assert record.training_wall(str(tmp_path), 40) is None  # no summary yet
  summary(resumed_from=0)  # written before wall_s_from_step existed: counted from its resume
  assert record.training_wall(str(tmp_path), 40) == (0, 12.5)
  summary(resumed_from=20)
  assert record.training_wall(str(tmp_path), 40) == (20, 12.5)
  summary(resumed_from=20, wall_s_from_step=0)
  assert record.training_wall(str(tmp_path), 40) == (0, 12.5)
  assert record.training_wall(str(tmp_path), 30) is None  # it ended elsewhere


def test_a_wall_record_that_cannot_be_written_warns_and_training_goes_on(tmp_path, monkeypatch,
                                                                          capsys):
  def disk_full(*args):
    raise OSError(28, "No space left on device")
  clock = loop.WallClock(str(tmp_path), 0)
  monkeypatch.setattr(loop.os, "replace", disk_full)
  clock.save(10)  # no exception
  err = capsys.readouterr().err
  assert err.startswith("warning: could not record the wall time at step 10") and "No space" in err


def test_the_sweep_config_file_declares_its_members():
  path = os.path.join(ROOT, "experiments", "configs", "optimizer_sweep.py")
  module = cli.load_config_module(path)
  members = sweep.from_config(module)
  assert len(members) == 12
  assert members[0] == [("optimizer.name", "gda"), ("optimizer.lr", 1e-3), ("seed", 0)]
  configs = [cli.resolve_config(path, m, module) for m in members]
  assert _plan(configs) == [list(range(6)), list(range(6, 12))]


def test_resume_without_workdir_takes_the_newest_run(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  for name in ("default-20250101-000000", "default-20260101-000000", "other-20270101-000000"):
    (tmp_path / "runs" / name / "checkpoints" / "10").mkdir(parents=True)
  options = {"workdir": None, "resume": True}
  assert cli.choose_workdir(options, DEFAULT, is_sweep=False) == os.path.join(
      "runs", "default-20260101-000000")
  with pytest.raises(ConfigError, match="found no runs/default-sweep-<timestamp>"):
    cli.choose_workdir(options, DEFAULT, is_sweep=True)

"""The command line: argv and overrides, every refusal of bad input (exit 2, one paragraph,
nothing compiled), and end-to-end runs of ``python -m experiments.run`` in a subprocess.

The refusals run in-process (``cli.main``, the same code path as the command);
one subprocess case checks that the real process keeps the same contract.
"""

import json
import os
import subprocess
import sys

import pytest

from ebm_gan.runner import cli
from ebm_gan.runner import workdir as workdir_lib
from ebm_gan.runner.registry import ConfigError
from tiny_runs import DEFAULT, ROOT


def _config(*overrides):
  return cli.resolve_config(DEFAULT, [o.split("=", 1) for o in overrides])


def test_overrides_are_typed():
  c = _config("batch_size=32", "optimizer.lr=1e-2", "model.energy_hidden=(8, 4)",
              "smoke=false", "optimizer.critic_lr=0.5", "dataset=swissroll")
  assert c.batch_size == 32 and isinstance(c.batch_size, int)
  assert c.optimizer.lr == 0.01
  assert c.model.energy_hidden == (8, 4)
  assert c.smoke is False and c.optimizer.critic_lr == 0.5 and c.dataset == "swissroll"


def test_smoke_switch_shrinks_the_run():
  c = _config("smoke=true")
  assert c.steps <= 100 and c.model.energy_hidden == (32, 32)


def test_explicit_overrides_win_over_the_smoke_switch():
  c = _config("smoke=true", "model.energy_hidden=(8,)", "steps=40")
  assert c.model.energy_hidden == (8,) and c.steps == 40
  assert c.model.generator_hidden == (32, 32)  # not overridden: smoke's


def test_critic_lr_none_means_same_as_lr():
  c = _config("optimizer.critic_lr=None", "optimizer.lr=0.02")
  assert c.optimizer.critic_lr is None
  _, built, _ = cli.build(DEFAULT, c)
  assert built.config.optimizer.critic_lr is None  # built: the critic at lr (config.py)


def test_a_penalty_weight_without_a_penalty_is_warned_about_once(tmp_path, capsys):
  argv = ["--config.penalty.name=none", "--config.penalty.weight=0.1", "--sweep", "seed=0,1",
          "--workdir", str(tmp_path / "w")]
  plan = cli._prepare(argv, DEFAULT)  # pylint: disable=protected-access
  plan["lock"].release()
  err = capsys.readouterr().err
  assert err == ("warning: --config.penalty.weight has no effect: penalty.name='none'.\n"), err
  single = argv[:2] + ["--workdir", str(tmp_path / "single")]
  cli._prepare(single, DEFAULT)["lock"].release()  # a single run: once too
  assert capsys.readouterr().err.count("warning:") == 1


def test_parse_args_splits_flags_and_overrides():
  path, overrides, options = cli.parse_args(
      ["--config", "x.py", "--config.optimizer.lr=0.1", "--workdir=w", "--resume",
       "--sweep", "seed=0:2", "--sweep=optimizer.name=gda,ogda", "--sequential",
       "--only", "seed=1", "--only=optimizer.name=ogda", "--no-progress"], DEFAULT)
  assert path == "x.py" and overrides == [("optimizer.lr", "0.1")]
  assert options == {"workdir": "w", "progress": False, "resume": True,
                     "sweep": ["seed=0:2", "optimizer.name=gda,ogda"],
                     "only": ["seed=1", "optimizer.name=ogda"], "no_sweep": False,
                     "sequential": True, "help": False, "dry_run": False}


def test_python_values_are_type_checked():
  c = cli.resolve_config(DEFAULT, [("optimizer.lr", 0.5), ("seed", 3),
                                      ("model.energy_hidden", [4, 4])])
  assert c.optimizer.lr == 0.5 and c.seed == 3 and c.model.energy_hidden == (4, 4)
  with pytest.raises(ConfigError, match="wrong type"):
    cli.resolve_config(DEFAULT, [("optimizer.lr", "fast")])


def test_runner_fields_have_defaults():
  c = cli.resolve_config(DEFAULT, [("checkpoint_every", "50"), ("picture_every", "0")])
  assert c.checkpoint_every == 50 and c.picture_every == 0
  assert c.max_to_keep >= 1 and c.tensorboard_every >= 0


# --- bad input through the command line (in-process: same code path as the CLI) --------------

def _main(capsys, *args):
  rc = cli.main(list(args), DEFAULT)
  err = capsys.readouterr().err
  return rc, err


def _corrupt_workdir(tmp_path, kind, args):
  """A run folder of the run ``args`` (marked as such) whose checkpoints are damaged."""
  workdir = tmp_path / "corrupt"
  (workdir / "checkpoints").mkdir(parents=True)
  overrides = [a[len("--config."):].split("=", 1) for a in args if a.startswith("--config.")]
  workdir_lib.write_marker(str(workdir), workdir_lib.run_identity(
      "ebm_gan", cli.resolve_config(DEFAULT, overrides)))
  if kind == "garbage":  # a step folder holding something else
    (workdir / "checkpoints" / "40").mkdir()
    (workdir / "checkpoints" / "40" / "default").write_text("not a checkpoint")
  elif kind == "file":
    os.rmdir(workdir / "checkpoints")
    (workdir / "checkpoints").write_text("oops")
  return str(workdir)


TINY = ["--config.steps=20", "--config.steps_per_dispatch=10", "--config.batch_size=8",
        "--config.model.energy_hidden=(4,)", "--config.model.generator_hidden=(4,)",
        "--config.entropy.mi.hidden=(4,)",
        "--config.penalty.name=none", "--config.eval_samples=50", "--no-progress"]

_GET = "from experiments.configs.default import get_config\n"
CONFIG_FILES = {  # config files with one mistake each
    "raises.py": "def get_config():\n  raise RuntimeError('no data dir')\n",
    "takes_arg.py": "def get_config(x):\n  return x\n",
    "no_return.py": _GET + "def finalize(c):\n  c.steps = 3\n",
    "adds_key.py": _GET + "def finalize(c):\n  c.stepz = 3\n  return c\n",
    "missing.py": ("import ml_collections\ndef get_config():\n  return ml_collections.ConfigDict("
                   "{'program': 'ebm_gan', 'seed': 0})\n"),
    "frozen.py": ("import ml_collections\nfrom experiments.configs import default\n"
                  "def get_config():\n  return ml_collections.FrozenConfigDict("
                  "default.get_config())\n"),
    "conf.yaml": "program: ebm_gan\n",
    "exits.py": "import sys\nsys.exit(0)\n",
    "toy_as_ebm.py": ("from experiments.configs import toy_games\ndef get_config():\n"
                      "  c = toy_games.get_config()\n  c.program = 'ebm_gan'\n  return c\n"),
}

BAD_INPUTS = [
    (["--config.batchsize=3"], ["batchsize", "batch_size"]),                  # unknown key
    (["--config.optimizer.nam=ogda"], ["optimizer.nam"]),                     # unknown nested key
    (["--config.batch_size=abc"], ["integer"]),                               # wrong type
    (["--config.optimizer.lr=fast"], ["number"]),                             # wrong type
    (["--config.smoke=maybe"], ["true or false"]),                            # wrong type
    (["--config.model=3"], ["group"]),                                        # group, not value
    (["--config.seed.x=1"], ["seed", "not a group"]),                         # value, not group
    (["--config.model.energy_hidden=abc"], ["energy_hidden", "tuple"]),       # wrong type
    (["--config.optimizer.lr=0"], ["optimizer.lr=0.0", "positive"]),         # zero lr
    (["--config.game=vae"], ["game='vae'", "ebm", "gan"]),                    # unknown game
    (["--config.game=gan", "--config.gan_loss=kl"], ["gan_loss='kl'", "hinge", "wasserstein"]),
    (["--config.penalty.name=r3"], ["penalty.name='r3'", "r1", "wgan_gp"]),
    (["--config.penalty.weight=-1.0"], ["penalty.weight=-1.0", "positive"]),
    (["--config.model.energy_activation=sigmoidal"], ["model.energy_activation='sigmoidal'",
                                                       "relu"]),
    (["--config.model.energy_hidden=(8, -1)"], ["model.energy_hidden", "positive integers"]),
    (["--config.model.latent_dim=0"], ["model.latent_dim=0"]),
    (["--config.critic_steps=0"], ["critic_steps=0"]),
    (["--config.seed=-1"], ["seed=-1"]),
    (["--config.entropy.knn.k=0", "--config.entropy.name=knn"], ["entropy.knn.k=0", "positive"]),
    (["--config.entropy.noisy.posterior=gibbs", "--config.entropy.name=noisy"],
     ["entropy.noisy.posterior='gibbs'", "importance, mala"]),
    (["--config.entropy.name=flow"], ["entropy.name='flow'", "invertible", "model.generator"]),
    (["--config.dataset=mnist2"], ["dataset='mnist2'", "25gaussians"]),      # unknown name
    # images (issue 10): models and estimators that cannot take them, missing tfds data
    (["--config.dataset=digits"], ["model.energy='mlp'", "dataset='digits'", "(8, 8, 1)", "conv"]),
    (["--config.model.energy=conv"], ["model.energy='conv'", "2-D points", "mlp, quadratic"]),
    (["--config.dataset=stacked_digits", "--config.model.energy=conv",
      "--config.model.generator=conv", "--config.entropy.name=flow"],
     ["entropy.name='flow'", "none, knn, noisy, mi"]),
    (["--config.dataset=digits", "--config.model.energy=conv", "--config.model.generator=conv",
      "--config.model.normalisation=batch"], ["model.normalisation='batch'", "spectral"]),
    (["--config.dataset=digits", "--config.model.energy=conv", "--config.model.generator=conv",
      "--config.evaluation.mcmc_steps=5"], ["evaluation.mcmc_steps=5", "2-D toys"]),
    (["--config.dataset=mnist", "--config.data.dir={tmp}/empty"],
     ["dataset='mnist'", "empty/mnist", "tfds build mnist"]),
    (["--config.dispatch=sometimes"], ["dispatch='sometimes'", "per_step, scan"]),
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
    # config-file mistakes: the file and the problem, never a traceback
    (["--config", "{tmp}/raises.py"], ["raises.py", "get_config() failed", "RuntimeError",
                                       "no data dir"]),
    (["--config", "{tmp}/takes_arg.py"], ["get_config() must take no arguments", "(x)"]),
    (["--config", "{tmp}/no_return.py"], ["finalize(config) returned NoneType", "return c"]),
    (["--config", "{tmp}/adds_key.py"], ["finalize() failed", "'stepz'", "not a field"]),
    (["--config", "{tmp}/missing.py"], ["missing.py", "lacks the field 'steps'", "'ebm_gan'"]),
    (["--config", "{tmp}/frozen.py"], ["FrozenConfigDict"]),
    (["--config", "{tmp}/conf.yaml"], ["conf.yaml", "not a Python file"]),
    (["--config", "{tmp}/exits.py"], ["exits.py", "sys.exit(0)"]),
    (["--config", "{tmp}/toy_as_ebm.py"], ["lacks the field", "'ebm_gan'"]),
    # numbers and combinations
    (["--config.seed=18446744073709551616"], ["seed=18446744073709551616", "2**63"]),
    (["--config.entropy.name=knn", "--config.entropy.knn.k=8", "--config.batch_size=8"],
     ["entropy.knn.k=8", "batch_size=8", "larger than k"]),
    (["--config.entropy.name=knn", "--config.batch_size=1", "--config.parallel.devices=1"],
     ["entropy.knn.k=1", "batch_size=1"]),
    (["--config.entropy.name=knn", "--config.entropy.knn.k=2", "--config.batch_size=8",
      "--config.parallel.devices=4", "--config.parallel.estimators=per_device"],
     ["entropy.knn.k=2", "batch_size=8", "2 per device"]),
    (["--config.entropy.name=knn", "--config.entropy.knn.k=8", "--config.batch_size=8",
      "--config.parallel.devices=4"], ["entropy.knn.k=8", "batch_size=8", "larger than k"]),
    (["--config.parallel.estimators=shards"], ["parallel.estimators", "'shards'", "per_device"]),
    (["--config.parallel.devices=-1"], ["parallel.devices=-1", "integer >= 0"]),
    (["--config.parallel.devices=2.5"], ["parallel.devices", "2.5", "an integer"]),
    (["--config.parallel.devices=5"], ["parallel.devices=5", "4 device"]),
    (["--config.entropy.name=jacobian", "--config.model.latent_dim=3"],
     ["entropy.name='jacobian'", "model.latent_dim=3", "latent_dim <= the data's dimension"]),
    (["--config.entropy.name=score", "--config.entropy.score.sigma=-0.1"],
     ["entropy.score.sigma=-0.1", "positive number"]),
    (["--config.entropy.name=ssge", "--config.entropy.ssge.eigen_ratio=1.5"],
     ["entropy.ssge.eigen_ratio=1.5", "(0, 1]"]),
    (["--config.entropy.name=ssge", "--config.entropy.ssge.bandwidth=wide"],
     ["entropy.ssge.bandwidth='wide'", "median, neighbour"]),
    (["--config.entropy.name=mi", "--config.entropy.mi.sigma=-1.0"],
     ["entropy.mi.sigma=-1.0", "≥ 0"]),
    (["--config.evaluation.entropy_samples=1"], ["evaluation.entropy_samples=1", "at least 2"]),
    (["--config.steps=3000000000"], ["steps=3000000000", "32-bit", "2147483647"]),
    (["--config.smoke=true", "--config.log_every=1000"],
     ["log_every=1000", "steps=100", "1 <= log_every <= 100"]),
    (["--config.optimizer.lr=inf"], ["optimizer.lr=inf", "finite"]),
    (["--config.optimizer.lr=nan"], ["optimizer.lr=nan", "finite"]),
    (["--config.optimizer.critic_lr=inf"], ["optimizer.critic_lr=inf", "finite"]),
    (["--config.penalty.weight=inf"], ["penalty.weight=inf", "finite"]),
    (["--config.entropy.noisy.sigma=nan"], ["entropy.noisy.sigma=nan", "finite"]),
    (["--sweep", "optimizer.lr=1e-3,inf"], ["sweep member 1", "optimizer.lr=inf"]),
    (["--sweep", "optimizer.lr=1e-3,inf", "--sequential"], ["sweep member 1", "optimizer.lr=inf"]),
    (["--config.critic_steps=5"], ["critic_steps=5", "scheme='simultaneous'", "alternating"]),
    # optimiser settings, schedules, averaging, MCMC evaluation
    (["--config.optimizer.schedule=step"], ["optimizer.schedule='step'", "cosine", "linear"]),
    (["--config.optimizer.final_lr_fraction=2.0", "--config.optimizer.schedule=cosine"],
     ["optimizer.final_lr_fraction=2.0", "[0, 1]"]),
    (["--config.optimizer.ema_decay=1.0"], ["optimizer.ema_decay=1.0", "[0, 1)"]),
    (["--config.optimizer.optimistic_adam.b1=x"], ["number"]),
    (["--config.optimizer.optimistic_adam.b3=0.5"], ["optimistic_adam.b3", "not a config key", "b1, b2, eps"]),
    (["--config.optimizer.name=ogda", "--config.optimizer.ogda.first_step=last"],
     ["optimizer.ogda.first_step='last'", "repeat, zero"]),
    (["--config.evaluation.mcmc_steps=-1"], ["evaluation.mcmc_steps=-1", ">= 0"]),
    (["--config.penalty.height=-0.1"], ["penalty.height=-0.1", ">= 0"]),
    (["--config.entropy.weight=-1.0"], ["entropy.weight=-1.0", ">= 0"]),
    (["--config.penalty.height=inf"], ["penalty.height=inf", "finite"]),
    (["--config.negative_phase.mala_steps=-2"], ["negative_phase.mala_steps=-2", ">= 0"]),
    (["--config.negative_phase.mala_steps=5", "--config.negative_phase.step_size=0.0"],
     ["negative_phase.step_size=0.0", "positive"]),
    (["--config.penalty.schedule=exp"], ["penalty.schedule='exp'", "cosine"]),
    (["--config.penalty.schedule=cosine", "--config.penalty.final_weight=0.5"],
     ["penalty.final_weight=0.5", "at most weight"]),
    (["--config.penalty.schedule=cosine", "--config.penalty.final_weight=0.0"],
     ["penalty.final_weight=0.0", "positive"]),
    (["--config.evaluation.mcmc_step_size=0.0"], ["evaluation.mcmc_step_size=0.0", "positive"]),
    (["--config.critic_steps=5", "--config.scheme=extragradient"], ["critic_steps=5"]),
    # the command line itself
    (["--config.seed=1", "--config.seed=2"], ["--config.seed is given twice"]),
    (["--workdir=a", "--workdir=b"], ["--workdir is given twice"]),
    (["--config.optimizer.lr=1e-3", "--sweep", "optimizer.lr=1e-3,1e-4"],
     ["--config.optimizer.lr is given", "the sweep sets 'optimizer.lr'"]),
    (["--sweep", "optimizer.lr=1e-3,0.001"], ["members 0", "and 1", "the same run"]),
    (["--sweep", "seed=0:1000000"], ["1000000 members", "at most 10000"]),  # never expanded
    (["--sweep", "seed=0:101", "--sweep", "batch_size=1:101"], ["10100 members", "101 x 100"]),
    (["--only", "seed=0"], ["--only selects members of a sweep, but there is none"]),
    (["--sweep", "seed=0:2", "--only", "seed"], ["--only 'seed' is not a selection"]),
    (["--sweep", "seed=0:2", "--only", "sed=0"], ["no sweep member sets 'sed'", "'seed'"]),
    (["--sweep", "seed=0:2", "--only", "seed=5"], ["leaves no sweep member", "values 0, 1"]),
    (["--workdir", "{corrupt:file}"] + TINY, ["checkpoint folder", "is a file"]),
    (["--workdir", "{corrupt:garbage}"] + TINY, ["checkpoint folder", "cannot be used"]),
]


@pytest.mark.parametrize("args, words", BAD_INPUTS)
def test_bad_input_exits_2_with_one_paragraph(tmp_path, capsys, args, words):
  (tmp_path / "empty").mkdir()
  (tmp_path / "a_file").write_text("x")
  (tmp_path / "broken.py").write_text("def get_config(:\n")
  (tmp_path / "noget.py").write_text("X = 1\n")
  for name, text in CONFIG_FILES.items():
    (tmp_path / name).write_text(text)
  (tmp_path / "swept.py").write_text(
      "from experiments.configs.optimizer_sweep import get_config, finalize, sweep\n")
  args = [a.replace("{tmp}", str(tmp_path)).replace("{swept}", str(tmp_path / "swept.py"))
          for a in args]
  args = [_corrupt_workdir(tmp_path, a[len("{corrupt:"):-1], args) if a.startswith("{corrupt:")
          else a for a in args]
  rc, err = _main(capsys, *args)
  assert rc == cli.EXIT_USER_ERROR, err
  assert err.startswith("error: ") and err.count("\n") == 1, err  # one paragraph
  assert "Traceback" not in err
  for w in words:
    assert w in err, err


def _run(*args, cwd=ROOT, timeout=240):
  return subprocess.run([sys.executable, "-m", "experiments.run", *args], cwd=cwd,
                        capture_output=True, text=True, timeout=timeout)


def test_the_process_exits_2_with_one_paragraph():
  r = _run("--config.smoke=true", "--config.batch_size=0")
  assert r.returncode == 2, r.stderr
  assert r.stderr == "error: batch_size=0 is not allowed; expected a positive integer.\n"


@pytest.mark.slow  # > 10 s in a full run on the shared 2-core machine
def test_smoke_run_writes_the_run_folder(tmp_path):
  workdir = str(tmp_path / "run")
  r = _run("--config.smoke=true", "--workdir", workdir, "--no-progress")
  assert r.returncode == 0, r.stderr
  for name in ("config.json", "metrics.jsonl", "samples.png", "curves.png", "summary.json"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0, name
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in rows] == list(range(1, 101))  # smoke: 100 steps, log_every=1
  assert {"l1", "l3", "entropy", "loss_energy", "loss_generator", "grad_norm/energy",
          "diverged"} <= set(rows[0])
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  assert summary["status"] == "ok" and summary["steps_done"] == 100
  assert summary["num_modes"] == 25 and 0 <= summary["high_quality"] <= 1
  config = json.load(open(os.path.join(workdir, "config.json")))
  assert config["smoke"] is True and config["steps"] == 100
  assert "modes_covered" in r.stdout  # the printed summary table


@pytest.mark.slow  # > 10 s in a full run on the shared 2-core machine
def test_diverging_run_is_a_result_not_a_crash(tmp_path):
  workdir = str(tmp_path / "run")
  r = _run("--config.smoke=true", "--config.optimizer.name=gda", "--config.optimizer.lr=1e4",
           "--workdir", workdir, "--no-progress")
  assert r.returncode == cli.EXIT_DIVERGED, r.stderr
  assert "Traceback" not in r.stderr
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  assert summary["status"] == "diverged" and summary["diverged_at"] >= 1
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert rows[-1]["diverged"] and rows[-1]["step"] == summary["diverged_at"]

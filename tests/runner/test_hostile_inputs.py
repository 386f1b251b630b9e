"""Hostile inputs (issue 30, "nothing lost, nothing written outside the run"): each is refused
as one paragraph on stderr with exit status 2 before anything compiles, or warned about once,
and nothing around the run folder changes. Each case runs the real command in a subprocess.
The sections are numbered as the issue's cases (case 3, the conv players' size limits, is in
tests/runner/test_limits.py, its command here among the dry-run cases).
"""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ebm_gan.runner import cli
from ebm_gan.runner import record
from ebm_gan.runner import workdir as workdir_lib
from tiny_runs import CONFIGS, DEFAULT, ROOT

TWO_PARTS = ("from experiments.configs.default import get_config, finalize\n"
             "def sweep(add):\n"
             "  for label in ('A', 'B'):\n"
             "    add(label=label, seed={seed})\n")
# A run of a few steps of a tiny model (for testing only).
TINY = ["--config.steps=10", "--config.steps_per_dispatch=10", "--config.batch_size=8",
        "--config.model.energy_hidden=(4,)", "--config.model.generator_hidden=(4,)",
        "--config.penalty.name=none", "--config.eval_samples=50", "--config.picture_every=0",
        "--config.tensorboard_every=0", "--config.evaluation.mcmc_steps=0",
        "--config.evaluation.entropy_samples=0", "--config.negative_phase.mala_steps=0",
        "--config.optimizer.name=gda"]


def _run(module, *args, env=None, timeout=240):
  """``python -m module args`` from the repository root: (exit status, stdout, stderr)."""
  r = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT,
                     capture_output=True, text=True, timeout=timeout,
                     env=None if env is None else {**os.environ, **env})
  return r.returncode, r.stdout, r.stderr


def _tree(root):
  """Every entry under ``root``: a file's SHA-256, a folder's '/'."""
  out = {}
  for folder, dirs, files in os.walk(root):
    for name in dirs:
      out[os.path.relpath(os.path.join(folder, name), root)] = "/"
    for name in files:
      path = os.path.join(folder, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
  return out


def _refused(status, err, *words):
  assert status == 2, err
  assert err.startswith("error: ") and err.count("\n") == 1, err  # one paragraph
  assert "Traceback" not in err, err
  for w in words:
    assert w in err, err


def _two_parts(tmp_path, seed=0):
  config = tmp_path / f"two_parts_{seed}.py"
  config.write_text(TWO_PARTS.format(seed=seed))
  return str(config)


def _users_folder(path):
  (path / "logs").mkdir(parents=True)
  (path / "parts.json").write_text('{"mine": 1}\n')
  (path / "logs" / "part-0.log").write_text("my own log\n")
  (path / "notes.txt").write_text("notes\n")


# 1. experiments.parts claims its folder like the launcher claims a run's.

def test_parts_refuse_a_users_folder_and_change_nothing(tmp_path):
  """It used to overwrite the user's parts.json, append to their logs/part-0.log and run."""
  user, config = tmp_path / "user", _two_parts(tmp_path)
  _users_folder(user)
  before = _tree(tmp_path)
  status, _, err = _run("experiments.parts", "--config", config, "--by", "label",
                        "--workdir", user, "--", *TINY)
  _refused(status, err, f"--workdir='{user}'", "not empty", "logs/, notes.txt, parts.json")
  assert _tree(tmp_path) == before


def test_parts_refuse_a_folder_that_cannot_be_made(tmp_path):
  """It used to end in a NotADirectoryError traceback."""
  status, _, err = _run("experiments.parts", "--config", _two_parts(tmp_path), "--by", "label",
                        "--workdir", "/dev/null/x")
  _refused(status, err, "--workdir='/dev/null/x'", "not a writable folder", "/dev/null")


def test_parts_refuse_another_commands_folder(tmp_path):
  from experiments import parts  # pylint: disable=g-import-not-at-top
  other, run = tmp_path / "other", tmp_path / "run"
  config = _two_parts(tmp_path, seed=1)
  workdir_lib.claim(str(other), parts.identity(config, "label", ["A", "B"])).release()
  workdir_lib.claim(str(run), workdir_lib.run_identity("ebm_gan", cli.resolve_config(
      DEFAULT, []))).release()
  config = _two_parts(tmp_path)
  before = _tree(tmp_path)
  for folder, words in ((other, "holds another run"), (run, "not a parts folder")):
    status, _, err = _run("experiments.parts", "--config", config, "--by", "label",
                          "--workdir", folder, "--dry-run")
    _refused(status, err, f"--workdir='{folder}'", words)
  assert _tree(tmp_path) == before


def test_parts_dry_run_checks_each_parts_folder(tmp_path, capsys):
  """A part's folder holding another run is refused before any part starts (the launcher of
  that part would refuse it)."""
  from experiments import parts  # pylint: disable=g-import-not-at-top
  work, config = tmp_path / "bench", _two_parts(tmp_path)
  workdir_lib.claim(str(work), parts.identity(config, "label", ["A", "B"])).release()
  _users_folder(work / "part-1")
  before = _tree(tmp_path)
  assert parts.main(["--config", config, "--by", "label", "--workdir", str(work),
                     "--dry-run", "--", *TINY]) == 2
  _refused(2, capsys.readouterr().err, "part-1 (label=B)", f"--workdir='{work}/part-1'")
  assert _tree(tmp_path) == before


def test_parts_take_their_own_folder_again(tmp_path, capsys):
  """Their own folder (marked), and one written before markers (its parts.json names these
  parts), pass the dry run."""
  from experiments import parts  # pylint: disable=g-import-not-at-top
  config = _two_parts(tmp_path)
  own, legacy = tmp_path / "own", tmp_path / "legacy"
  workdir_lib.claim(str(own), parts.identity(config, "label", ["A", "B"])).release()
  (legacy / "logs").mkdir(parents=True)
  (legacy / "parts.json").write_text(json.dumps({"part-0": {"label": "A"},
                                                 "part-1": {"label": "B"}}))
  for folder in (own, legacy):
    assert parts.main(["--config", config, "--by", "label", "--workdir", str(folder),
                       "--dry-run", "--", *TINY]) == 0
    assert "2 parts (2 members) are valid" in capsys.readouterr().out


@pytest.mark.slow  # two tiny parts side by side, then dry runs: ~25 s
def test_parts_run_again_resume_in_their_own_folder(tmp_path):
  """After a real run, the same command is accepted in its own folder: its dry run checks the
  parts folder's claim and each part's run folder, as the rerun's launchers do (a real rerun
  of finished parts only evaluates them again)."""
  work = tmp_path / "bench"
  config = _two_parts(tmp_path)
  status, out, err = _run("experiments.parts", "--config", config, "--by", "label",
                          "--workdir", work, "--jobs", "2", "--", *TINY, "--no-progress")
  assert status == 0, out + err
  assert workdir_lib.read_marker(str(work))["kind"] == "parts"
  before = _tree(tmp_path)
  status, out, err = _run("experiments.parts", "--config", config, "--by", "label",
                          "--workdir", work, "--dry-run", "--", *TINY, "--no-progress")
  assert status == 0, out + err
  assert _tree(tmp_path) == before  # a dry run writes nothing
  other = _two_parts(tmp_path, seed=1)
  before = _tree(tmp_path)
  status, _, err = _run("experiments.parts", "--config", other, "--by", "label",
                        "--workdir", work, "--", *TINY)
  _refused(status, err, "holds another run")
  assert _tree(tmp_path) == before


# 2. A dry run that says "valid" means the run starts: the same folder checks and size limits.

def _home(tmp_path):
  home = tmp_path / "home"
  (home / ".config").mkdir(parents=True)
  (home / ".bashrc").write_text("# the user's\n")
  # matplotlib keeps its font cache in the home folder: not the launcher's writing
  env = {"HOME": str(home), "MPLCONFIGDIR": str(tmp_path.parent / f"{tmp_path.name}-mpl")}
  return env, ["--workdir", "~"], ["home", "not empty", ".bashrc, .config/"]


def _users(tmp_path):
  _users_folder(tmp_path / "user")
  return None, ["--workdir", tmp_path / "user"], ["user", "not empty", "notes.txt"]


def _another_run(tmp_path):
  config = cli.resolve_config(DEFAULT, [("seed", "5")])
  workdir_lib.claim(str(tmp_path / "run"), workdir_lib.run_identity("ebm_gan", config)).release()
  return None, ["--workdir", tmp_path / "run"], ["holds another run", "seed: 5 -> 0"]


def _conv_width(tmp_path):
  return None, ["--config", os.path.join(CONFIGS, "digits.py"), "--config.model.conv_width=100000",
                "--workdir", tmp_path / "run"], ["model.conv_width=100000", "parameters",
                                                 "EBM_GAN_MAX_PARAMETERS"]


def _in_use(tmp_path):
  lock = workdir_lib.claim(str(tmp_path / "run"), workdir_lib.run_identity(
      "ebm_gan", cli.resolve_config(DEFAULT, [])))
  return {"_lock": lock}, ["--workdir", tmp_path / "run"], ["is in use", f"pid {os.getpid()}"]


@pytest.mark.parametrize("case", [_home, _users, _another_run, _conv_width, _in_use])
def test_a_dry_run_refuses_what_the_run_refuses(tmp_path, capsys, case):
  env, args, words = case(tmp_path)
  lock = (env or {}).pop("_lock", None)
  before = _tree(tmp_path)
  status, _, dry = _run("experiments.run", *args, "--dry-run", env=env or None)
  _refused(status, dry, *words)
  assert _tree(tmp_path) == before
  if env and "HOME" in env:  # the launcher in this process expands ~ with its own HOME
    return
  assert cli.main(list(map(str, args)), DEFAULT) == 2
  assert capsys.readouterr().err == dry  # the run's refusal, word for word
  assert _tree(tmp_path) == before
  if lock is not None:
    lock.release()


@pytest.mark.slow  # a tiny run: ~9 s
def test_a_dry_run_refuses_a_resume_the_run_refuses(tmp_path, capsys):
  """A checkpoint whose learning rates decay over steps=10 is not resumed with steps=20."""
  run = tmp_path / "run"
  assert cli.main([*TINY, "--workdir", str(run), "--no-progress"], DEFAULT) == 0
  capsys.readouterr()
  before = _tree(tmp_path)
  longer = [a for a in TINY if not a.startswith("--config.steps=")] + ["--config.steps=20"]
  status, _, dry = _run("experiments.run", *longer, "--workdir", run, "--dry-run")
  _refused(status, dry, "steps=10", "steps=20", "mid-run")
  assert _tree(tmp_path) == before
  assert cli.main([*longer, "--workdir", str(run)], DEFAULT) == 2
  assert capsys.readouterr().err == dry


# 4. Tracebacks that are now refusals.

def test_a_damaged_tfds_folder_is_refused_naming_the_file(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  info = tmp_path / "tfds" / "mnist" / "3.0.1" / "dataset_info.json"
  info.parent.mkdir(parents=True)
  info.write_text("{broken")
  before = _tree(tmp_path)
  status, _, err = _run("experiments.run", "--config", os.path.join(CONFIGS, "mnist.py"),
                        f"--config.data.dir={tmp_path / 'tfds'}", "--workdir", tmp_path / "run")
  _refused(status, err, str(info), "cannot be read",
           f"tfds build mnist --data_dir={tmp_path / 'tfds'}")
  assert _tree(tmp_path) == before


def test_an_unusable_classifier_cache_is_refused_before_training(tmp_path):
  """It used to train, then end in a NotADirectoryError traceback with no summary."""
  status, _, err = _run("experiments.run", "--config", os.path.join(CONFIGS, "stacked_digits.py"),
                        "--config.smoke=true", "--config.evaluation.classifier_cache=/dev/null/x",
                        "--workdir", tmp_path / "run", "--no-progress")
  _refused(status, err, "evaluation.classifier_cache='/dev/null/x'", "/dev/null is not a folder")
  assert not (tmp_path / "run").exists()  # refused before the run folder was made


# 5. A negative phase whose MALA never moves.

def test_an_absurd_mala_step_size_is_refused(tmp_path):
  status, _, err = _run("experiments.run", "--config.negative_phase.step_size=1e30",
                        "--workdir", tmp_path / "run", "--dry-run")
  _refused(status, err, "negative_phase.step_size=1e+30", "(0, 10000]")


def _recorder(tmp_path, steps=200):
  config = cli.resolve_config(DEFAULT, [("steps", str(steps)), ("tensorboard_every", "0")])
  tmp_path.mkdir(exist_ok=True)
  return record.Recorder(config, str(tmp_path), 0)


def _chunk(acceptance, n=20):
  return {"l1": np.zeros(n), "loss_energy": np.zeros(n),
          "negative_acceptance": np.full(n, acceptance)}


def test_a_stuck_negative_phase_is_warned_about_once(tmp_path, capsys):
  recorder = _recorder(tmp_path)
  for done in range(0, 200, 20):
    recorder.record(done, _chunk(0.004))
  recorder.close()
  err = capsys.readouterr().err
  assert err.count("warning:") == 1, err  # once, not at every logged step
  assert "accepted 0.4% of its moves over steps 1-60" in err
  assert "negative_phase.step_size=0.003" in err and "smaller" in err
  healthy = _recorder(tmp_path / "healthy")
  for done in range(0, 200, 20):
    healthy.record(done, _chunk(0.7))
  healthy.close()
  assert capsys.readouterr().err == ""


@pytest.mark.slow  # a smoke run: ~15 s
def test_a_smoke_run_with_a_stuck_negative_phase_warns(tmp_path):
  status, out, err = _run("experiments.run", "--config.smoke=true",
                          "--config.negative_phase.step_size=1e4", "--config.eval_samples=100",
                          "--config.evaluation.mcmc_steps=0", "--config.picture_every=0",
                          "--workdir", tmp_path / "run", "--no-progress")
  assert status == 0, out + err
  assert err.count("warning: the negative phase's MALA accepted") == 1, err
  assert "negative_phase.step_size=10000" in err


# 6. Numbers out of range say so.

def test_a_seed_of_5000_digits_is_out_of_range(tmp_path):
  status, _, err = _run("experiments.run", "--config.seed=" + "9" * 5000, "--dry-run",
                        "--workdir", tmp_path / "run")
  _refused(status, err, "seed=", "5000 digits", "out of range", "[0, 2**63)")
  assert "wrong type" not in err and len(err) < 200


def test_a_config_files_huge_seed_is_out_of_range(tmp_path):
  """Python refuses to print such a number: it used to be a ValueError traceback."""
  config = tmp_path / "huge.py"
  config.write_text("from experiments.configs.default import get_config as base, finalize\n"
                    "def get_config():\n  c = base()\n  c.seed = 10**5000\n  return c\n")
  status, _, err = _run("experiments.run", "--config", config, "--dry-run",
                        "--workdir", tmp_path / "run")
  _refused(status, err, "seed=100000... (5001 digits) is out of range", "[0, 2**63)")

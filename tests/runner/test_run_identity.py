"""Run folders' identity and locks: another run's folder, a foreign folder, a folder in use
are refused (exit 2, one paragraph); nothing is written into a folder that is refused.
"""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from ebm_gan.runner import cli
from ebm_gan.runner import workdir as workdir_lib
from ebm_gan.runner.registry import ConfigError
from tiny_runs import DEFAULT, ROOT, tiny

# A run of a few steps of a tiny model (for testing only).
TINY = tiny(10, batch=8, width=4, eval_samples=50, evaluation__mcmc_steps=0)


def _identity(*overrides):
  config = cli.resolve_config(DEFAULT, [o.split("=", 1) for o in overrides])
  return workdir_lib.run_identity("ebm_gan", config)


def _tiny_identity(*overrides):
  return _identity(*[a[len("--config."):] for a in TINY if a.startswith("--config.")], *overrides)


def _sweep_identity(overrides_of_members, *extra):
  """The sweep folder's identity of a TINY sweep, as the launcher computes it."""
  from ebm_gan.runner import sweep  # pylint: disable=g-import-not-at-top
  members = [(sweep.member_name(i, m), _tiny_identity(*extra, *[f"{k}={v}" for k, v in m]))
             for i, m in enumerate(overrides_of_members)]
  return workdir_lib.group_identity("ebm_gan", "sweep", members)


def _main(capsys, *args):
  rc = cli.main(list(args), DEFAULT)
  return rc, capsys.readouterr().err


def _one_paragraph(err):
  assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err


def test_a_folder_of_the_same_run_is_claimed_again(tmp_path):
  path = str(tmp_path / "run")
  workdir_lib.claim(path, _identity("seed=1")).release()
  # steps and the logging fields may change between a run and its resumption
  workdir_lib.claim(path, _identity("seed=1", "steps=99", "log_every=5")).release()
  marker = json.load(open(os.path.join(path, workdir_lib.MARKER)))
  assert marker["program"] == "ebm_gan" and marker["kind"] == "run"
  assert marker["config"]["seed"] == 1 and "steps" not in marker["config"]


def test_another_run_is_refused_naming_the_fields(tmp_path, capsys):
  path = str(tmp_path / "run")
  workdir_lib.claim(path, _tiny_identity("seed=1")).release()
  assert not os.path.exists(os.path.join(path, "config.json"))  # the marker alone decides
  rc, err = _main(capsys, "--workdir", path, "--config.seed=2", "--config.optimizer.lr=0.01",
                  *TINY)
  assert rc == cli.EXIT_USER_ERROR
  _one_paragraph(err)
  assert "holds another run" in err and "seed: 1 -> 2" in err and "optimizer.lr" in err
  assert sorted(os.listdir(path)) == [workdir_lib.LOCK, workdir_lib.MARKER]


def test_another_program_is_refused(tmp_path, capsys):
  path = str(tmp_path / "run")
  workdir_lib.claim(path, _identity()).release()
  rc, err = _main(capsys, "--config", os.path.join(ROOT, "experiments/configs/toy_games.py"),
                  "--workdir", path)
  assert rc == cli.EXIT_USER_ERROR
  _one_paragraph(err)
  assert "program 'ebm_gan'" in err and "'toy_games'" in err


@pytest.mark.parametrize("where", ["folder", "cwd"])
def test_a_foreign_folder_is_refused_and_left_alone(tmp_path, capsys, monkeypatch, where):
  foreign = tmp_path / "mine"
  (foreign / "thesis").mkdir(parents=True)
  (foreign / "notes.txt").write_text("precious")
  before = sorted(os.listdir(foreign))
  if where == "cwd":
    monkeypatch.chdir(foreign)
  rc, err = _main(capsys, "--workdir", "." if where == "cwd" else str(foreign), *TINY)
  assert rc == cli.EXIT_USER_ERROR
  _one_paragraph(err)
  assert "not a run folder" in err and "notes.txt, thesis/" in err
  assert f"'{foreign}'" in err  # '.' expanded to the folder it names
  assert sorted(os.listdir(foreign)) == before


def test_a_folder_from_before_markers_is_adopted_if_its_config_matches(tmp_path):
  path = tmp_path / "old"
  path.mkdir()
  config = cli.resolve_config(DEFAULT, [("seed", 4)])
  (path / "config.json").write_text(config.to_json_best_effort())
  with pytest.raises(ConfigError, match="not a run folder"):
    workdir_lib.claim(str(path), _identity("seed=5"))
  workdir_lib.claim(str(path), _identity("seed=4")).release()
  assert (path / workdir_lib.MARKER).exists()


def test_home_is_expanded(tmp_path, monkeypatch):
  monkeypatch.setenv("HOME", str(tmp_path))
  options = {"workdir": "~/runs/a", "resume": False}
  assert cli.choose_workdir(options, DEFAULT, is_sweep=False) == str(tmp_path / "runs" / "a")


def test_a_folder_in_use_is_refused_naming_the_holder(tmp_path, capsys):
  path = str(tmp_path / "run")
  held = workdir_lib.claim(path, _tiny_identity())
  try:
    rc, err = _main(capsys, "--workdir", path, *TINY)
  finally:
    held.release()
  assert rc == cli.EXIT_USER_ERROR
  _one_paragraph(err)
  assert "in use by another run" in err
  assert f"pid {os.getpid()} on {socket.gethostname()}, started " in err
  assert "corrupt" not in err.lower() and "delete" not in err.lower()


def test_a_dead_holders_lock_is_taken_over(tmp_path):
  path = str(tmp_path / "run")
  code = ("import os, sys; from ebm_gan.runner import workdir as w; "
          "w.Lock(sys.argv[1]); os.kill(os.getpid(), 9)")
  os.makedirs(path)
  proc = subprocess.run([sys.executable, "-c", code, path], cwd=ROOT, env=dict(
      os.environ, PYTHONPATH=ROOT), capture_output=True, text=True)
  assert proc.returncode == -9, proc.stderr
  stale = json.load(open(os.path.join(path, workdir_lib.LOCK)))
  assert stale["pid"] != os.getpid()
  lock = workdir_lib.Lock(path)  # the killed holder's lock went with its process
  try:
    assert json.load(open(os.path.join(path, workdir_lib.LOCK)))["pid"] == os.getpid()
  finally:
    lock.release()


def test_a_sweep_folder_of_another_sweep_is_refused(tmp_path, capsys):
  path = tmp_path / "sweep"
  old = [[("optimizer.lr", "1e-3")], [("optimizer.lr", "1e-4")]]
  workdir_lib.claim(str(path), _sweep_identity(old)).release()
  rc, err = _main(capsys, "--sweep", "optimizer.lr=1e-3,1e-2", "--workdir", str(path), *TINY)
  assert rc == cli.EXIT_USER_ERROR
  _one_paragraph(err)
  assert "another sweep" in err and "001_optimizer.lr=1e-4" in err
  assert "001_optimizer.lr=1e-2" in err
  # the same members over another base config: refused too
  rc, err = _main(capsys, "--sweep", "optimizer.lr=1e-3,1e-4", "--workdir", str(path),
                  *TINY, "--config.seed=9")
  assert rc == cli.EXIT_USER_ERROR and "another base config" in err
  assert sorted(os.listdir(path)) == [workdir_lib.LOCK, workdir_lib.MARKER]


def test_a_member_folder_of_another_run_is_refused_before_anything_runs(tmp_path, capsys):
  path = tmp_path / "sweep"
  workdir_lib.claim(str(path), _sweep_identity([[("seed", "0")], [("seed", "1")]])).release()
  workdir_lib.claim(str(path / "000_seed=0"), _tiny_identity("seed=7")).release()  # planted
  rc, err = _main(capsys, "--sweep", "seed=0,1", "--sequential", "--workdir", str(path), *TINY)
  assert rc == cli.EXIT_USER_ERROR
  _one_paragraph(err)
  assert "000_seed=0" in err and "seed: 7 -> 0" in err
  assert not (path / "001_seed=1").exists()


@pytest.mark.slow
def test_the_changed_value_sweep_rerun_is_refused(tmp_path, capsys):
  path = str(tmp_path / "sweep")
  assert _main(capsys, "--sweep", "optimizer.lr=1e-3,1e-4", "--workdir", path, *TINY)[0] == 0
  names = sorted(os.listdir(path))
  assert "vmap_000-001" in names and "001_optimizer.lr=1e-4" in names
  group_marker = json.load(open(os.path.join(path, "vmap_000-001", workdir_lib.MARKER)))
  assert group_marker["kind"] == "group" and len(group_marker["members"]) == 2
  rc, err = _main(capsys, "--sweep", "optimizer.lr=1e-3,1e-2", "--workdir", path, *TINY)
  assert rc == cli.EXIT_USER_ERROR
  _one_paragraph(err)
  assert "another sweep" in err and "001_optimizer.lr=1e-2" in err
  assert sorted(os.listdir(path)) == names  # nothing new: no member folder for lr=1e-2


LONG = [a for a in TINY if not a.startswith(("--config.steps=", "--config.steps_per_dispatch="))
        ] + ["--config.steps=3000", "--config.steps_per_dispatch=100"]


@pytest.mark.slow
def test_two_concurrent_runs_the_second_refused_the_first_intact(tmp_path):
  path = str(tmp_path / "run")
  first = subprocess.Popen(
      [sys.executable, "-m", "experiments.run", *LONG, "--workdir", path], cwd=ROOT,
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  lock_file = os.path.join(path, workdir_lib.LOCK)
  deadline = time.time() + 120
  while not (os.path.exists(lock_file) and os.path.getsize(lock_file)) and time.time() < deadline:
    time.sleep(0.05)
  second = subprocess.run(
      [sys.executable, "-m", "experiments.run", *LONG, "--workdir", path],  # the same run
      cwd=ROOT, capture_output=True, text=True, timeout=240)
  assert first.wait(timeout=600) == 0, first.stderr.read()
  assert second.returncode == cli.EXIT_USER_ERROR, second.stderr
  assert f"in use by another run (pid {first.pid} on " in second.stderr
  summary = json.load(open(os.path.join(path, "summary.json")))
  assert summary["steps_done"] == 3000
  assert json.load(open(os.path.join(path, "config.json")))["seed"] == 0


def test_fields_added_later_keep_earlier_runs_identity_at_their_old_behaviour(tmp_path):
  """A run folder from before model.critic_conv_width / generator_conv_width and
  model.generator_normalisation existed: its marker's fingerprint and its config.json lack
  them. At None (= model.conv_width) and 'none', the earlier behaviour, the run is the same
  one, claimed and resumed; at a width, or with group norm, it is another run."""
  from ebm_gan.runner import record  # pylint: disable=g-import-not-at-top
  config = cli.resolve_config(DEFAULT, [("seed", 4)])
  flat = record.flatten_config(config)
  earlier = {k: v for k, v in flat.items() if k not in record.ADDED_FIELDS}
  assert len(earlier) == len(flat) - 3
  assert workdir_lib.fingerprint(earlier) == workdir_lib.fingerprint(flat)
  path = tmp_path / "earlier"
  path.mkdir()
  marker = {"kind": "run", "program": "ebm_gan", "fingerprint": workdir_lib.fingerprint(earlier),
            "config": workdir_lib.trajectory_config(earlier)}
  (path / workdir_lib.MARKER).write_text(json.dumps(marker))
  (path / "config.json").write_text(json.dumps(earlier))
  workdir_lib.claim(str(path), _identity("seed=4")).release()
  record.check_resumable(str(path), config)
  with pytest.raises(ConfigError, match="model.critic_conv_width: None -> 8"):
    workdir_lib.check(str(path), _identity("seed=4", "model.critic_conv_width=8"))
  config.model.generator_normalisation = "group"
  with pytest.raises(ConfigError, match="model.generator_normalisation: 'none' -> 'group'"):
    record.check_resumable(str(path), config)

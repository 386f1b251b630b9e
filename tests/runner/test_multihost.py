"""Several processes as one run (jax.distributed): config checks, and 2 CPU processes x 2 devices
= 1 process x 4 devices."""

import json
import os
import socket
import subprocess
import sys
import time

import jax
import ml_collections
import numpy as np
import pytest

from ebm_gan.runner import checkpoint
from ebm_gan.runner import cli
from ebm_gan.runner import distributed
from ebm_gan.runner.registry import ConfigError
from tiny_runs import DEFAULT, ROOT, tiny


def _parallel(**fields):
  block = ml_collections.ConfigDict({"devices": 0, "coordinator": "", "num_processes": 0,
                                     "process_id": -1})
  block.update(fields)
  return block


def test_settings_of_one_process_auto_and_host_port():
  assert distributed.settings(_parallel()) is None
  assert distributed.settings(_parallel(coordinator="auto")) == {}
  assert distributed.settings(_parallel(coordinator="auto", num_processes=4)) == {
      "num_processes": 4}
  assert distributed.settings(_parallel(coordinator="10.0.0.1:1234", num_processes=2,
                                        process_id=1)) == {
      "coordinator_address": "10.0.0.1:1234", "num_processes": 2, "process_id": 1}


@pytest.mark.parametrize("fields, words", [
    ({"coordinator": "10.0.0.1"}, ["parallel.coordinator='10.0.0.1'", "HOST:PORT"]),
    ({"coordinator": "host:99999", "num_processes": 2, "process_id": 0}, ["1..65535"]),
    ({"coordinator": "host:1234"}, ["needs parallel.num_processes >= 1"]),
    ({"coordinator": "host:1234", "num_processes": 2, "process_id": 2}, ["expected 0..1"]),
    ({"num_processes": 2, "process_id": 1}, ["need parallel.coordinator"]),
    ({"coordinator": "host:1234", "num_processes": True, "process_id": 0},
     ["parallel.num_processes=True"]),
])
def test_bad_settings_are_refused_naming_the_field(fields, words):
  with pytest.raises(ConfigError) as info:
    distributed.settings(_parallel(**fields))
  for w in words:
    assert w in str(info.value), str(info.value)


def test_a_bad_coordinator_exits_2_before_anything_runs(capsys, tmp_path):
  argv = ["--config.parallel.coordinator=nowhere", f"--workdir={tmp_path / 'w'}", "--dry-run"]
  assert cli.main(argv, DEFAULT) == cli.EXIT_USER_ERROR
  assert capsys.readouterr().err.startswith("error: parallel.coordinator='nowhere' is not allowed")


# A tiny model (for testing only).
ARGS = tiny(40, checkpoint_every=20, max_to_keep=3)


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow  # two processes and a reference run: 189 s measured at load average 17
def test_two_processes_of_two_devices_train_like_one_process_on_four(tmp_path):
  multi, single = str(tmp_path / "multi"), str(tmp_path / "single")
  port = _free_port()
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu")
  logs = [open(tmp_path / f"process{i}.log", "w+") for i in range(2)]
  procs = [subprocess.Popen(
      [sys.executable, "-m", "experiments.run", *ARGS, f"--config.parallel.coordinator=127.0.0.1:{port}",
       "--config.parallel.num_processes=2", f"--config.parallel.process_id={i}",
       "--workdir", multi], cwd=ROOT, env=env, stdout=logs[i], stderr=subprocess.STDOUT)
      for i in range(2)]
  for p, log in zip(procs, logs):
    p.wait(timeout=500)
    log.seek(0)
    assert p.returncode == 0, log.read()[-3000:]
  # 1 process, the 4 fake CPU devices: the same global mesh size and global batch.
  assert cli.main([*ARGS, "--config.parallel.devices=4", "--workdir", single], DEFAULT) == 0

  want = [json.loads(l) for l in open(os.path.join(single, "metrics.jsonl"))]
  got = [json.loads(l) for l in open(os.path.join(multi, "metrics.jsonl"))]
  assert len(got) == len(want) == 40  # one metrics file, written once (by process 0)
  # Measured: equal to the last bit (the cross-process psum adds the same 2 numbers).
  # Not bit-equal: gloo's cross-process all-reduce adds the partial sums in another order
  # than one process does. Measured (jax 0.10.2): step 1 within 7.2e-7·(|value| + 0.1), the
  # 40 steps within 1.1e-5·(…) (kNN amplifies rounding: tests/lib/test_device_invariance.py), the
  # checkpointed state within 1.3e-5; asserted 1e-5, 1e-3 and 1e-4.
  gaps = [max(abs(a[k] - b[k]) / (abs(b[k]) + 0.1) for k in b if isinstance(b[k], float))
          for a, b in zip(got, want)]
  assert [set(a) for a in got] == [set(b) for b in want]
  assert gaps[0] <= 1e-5 and max(gaps) <= 1e-3, gaps
  a, b = checkpoint.load_raw(single), checkpoint.load_raw(multi)
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, rtol=0, atol=1e-4)
  summary = json.load(open(os.path.join(multi, "summary.json")))
  assert summary["status"] == "ok" and summary["steps_done"] == 40
  # Process 1 wrote nothing of its own into the run folder.
  names = sorted(os.listdir(multi))
  assert names == sorted(os.listdir(single)), names


def _launch(tmp_path, workdir, port, extra=((), ())):
  """Two processes of one run (1 fake CPU device each), their logs in tmp_path."""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
             JAX_PLATFORMS="cpu")
  logs = [open(tmp_path / f"process{i}.log", "w+") for i in range(2)]
  given = {a.split("=")[0] for a in extra[0]}
  base = [a for a in ARGS if a.split("=")[0] not in given]
  procs = [subprocess.Popen(
      [sys.executable, "-m", "experiments.run", *base, *extra[i],
       f"--config.parallel.coordinator=127.0.0.1:{port}", "--config.parallel.num_processes=2",
       f"--config.parallel.process_id={i}", "--workdir", workdir],
      cwd=ROOT, env=env, stdout=logs[i], stderr=subprocess.STDOUT) for i in range(2)]
  return procs, logs


@pytest.mark.slow  # 3.7 s of the fast subset's 157 s; it stays under 2 min
def test_processes_started_with_different_configs_all_exit_2_naming_the_key(tmp_path):
  """Process 1 got another seed: both refuse before anything compiles, naming seed."""
  procs, logs = _launch(tmp_path, str(tmp_path / "run"), _free_port(),
                        (["--config.seed=1"], ["--config.seed=2"]))
  for i, (p, log) in enumerate(zip(procs, logs)):
    assert p.wait(timeout=120) == 2
    log.seek(0)
    text = log.read()
    assert f"seed (process {i}: {i + 1}) differs" in text and "Traceback" not in text, text
  assert not os.path.exists(tmp_path / "run" / "metrics.jsonl")


@pytest.mark.slow  # two processes start and compile: ~30 s on 2 cores
def test_a_lost_process_ends_the_other_with_one_paragraph(tmp_path):
  """kill -9 of process 1 while both train: process 0 stops within seconds with exit 6 and
  the resume hint, not a hang in the all-reduce nor jax's abort at its shutdown barrier
  (measured: 0-1 s after the kill; asserted 60 s)."""
  workdir = str(tmp_path / "run")
  procs, logs = _launch(tmp_path, workdir, _free_port(),
                        (["--config.steps=1000000"], ["--config.steps=1000000"]))
  metrics = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + 240
  while not (os.path.exists(metrics) and os.path.getsize(metrics) > 0):
    assert time.time() < deadline and procs[0].poll() is None, "training never started"
    time.sleep(0.5)
  procs[1].kill()
  assert procs[0].wait(timeout=60) == 6
  logs[0].seek(0)
  text = logs[0].read()
  assert "another process of this run stopped, so process 0 of 2 stops too" in text, text
  assert f"--workdir={workdir} to resume" in text and "Traceback" not in text


SWEEP = ["--sweep", "seed=0,1,2,3", "--sequential"]  # 4 groups: process 0 runs 0 and 2, 1 runs 1, 3


@pytest.mark.slow  # three sweeps of 4 tiny members: ~60 s on 2 cores
def test_a_sweep_is_shared_by_the_processes_and_survives_losing_one(tmp_path):
  """Members are spread over 2 processes; process 1 is killed once its first member is done.

  Process 0 finishes its members and stops with exit 6, naming member 003 that process 1
  left; the members done are intact (summary, metrics). The same two commands again finish
  the sweep: the table lists every member once, and each member's metrics equal the
  one-process sweep's to the bit (the same one-device program).
  """
  shared, alone = str(tmp_path / "shared"), str(tmp_path / "alone")
  procs, logs = _launch(tmp_path, shared, _free_port(), (SWEEP, SWEEP))
  first = os.path.join(shared, "001_seed=1", "summary.json")
  deadline = time.time() + 240
  while not os.path.exists(first):
    assert time.time() < deadline and procs[1].poll() is None, "member 001 never finished"
    time.sleep(0.1)
  procs[1].kill()
  assert procs[0].wait(timeout=120) == 6
  logs[0].seek(0)
  assert "its members 003_seed=3 are not done" in logs[0].read()
  for name in ("000_seed=0", "001_seed=1", "002_seed=2"):
    assert json.load(open(os.path.join(shared, name, "summary.json")))["status"] == "ok"
  kept = open(os.path.join(shared, "001_seed=1", "metrics.jsonl"), "rb").read()

  procs, logs = _launch(tmp_path, shared, _free_port(), (SWEEP, SWEEP))
  for p, log in zip(procs, logs):
    log.seek(0)
    assert p.wait(timeout=300) == 0, log.read()[-3000:]
  assert cli.main([*ARGS, *SWEEP, "--config.parallel.devices=1", "--workdir", alone],
                  DEFAULT) == 0
  table = open(os.path.join(shared, "sweep.csv")).read().splitlines()
  assert len(table) == 5 and all(",ok," in row for row in table[1:]), table
  assert open(os.path.join(shared, "001_seed=1", "metrics.jsonl"), "rb").read() == kept
  for name in ("000_seed=0", "001_seed=1", "002_seed=2", "003_seed=3"):
    assert (open(os.path.join(shared, name, "metrics.jsonl"), "rb").read()
            == open(os.path.join(alone, name, "metrics.jsonl"), "rb").read()), name

"""Kill-and-resume: a run SIGKILLed mid-run, then resumed, ends bit-identical to an unbroken one."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from ebm_gan.runner import checkpoint
from ebm_gan.runner import cli
from tiny_runs import DEFAULT, ROOT, tiny

STEPS = 300
# A tiny model (for testing only): short chunks and frequent checkpoints, so the kill lands mid-run.
ARGS = tiny(STEPS, checkpoint_every=30, max_to_keep=2, tensorboard_every=5)


def _latest(workdir):
  folder = os.path.join(workdir, "checkpoints")
  steps = [int(n) for n in os.listdir(folder) if n.isdigit()] if os.path.isdir(folder) else []
  return max(steps, default=None)


@pytest.mark.slow  # > 10 s in a full run on the shared 2-core machine
def test_sigkill_then_resume_is_bit_identical(tmp_path):
  killed, reference = str(tmp_path / "killed"), str(tmp_path / "reference")
  log = open(tmp_path / "killed.log", "w+")  # a file, not a pipe: a full pipe would block it
  proc = subprocess.Popen([sys.executable, "-m", "experiments.run", *ARGS, "--workdir", killed],
                          cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
  deadline = time.time() + 240
  # until the first checkpoint is sealed (a kill before that restarts from step 0:
  # tests/runner/test_checkpoint_integrity.py), then an arbitrary moment after it
  while (checkpoint.newest_intact_step(killed) is None and proc.poll() is None
         and time.time() < deadline):
    time.sleep(0.005)
  time.sleep(random.uniform(0.0, 0.05))
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  log.seek(0)
  assert proc.returncode == -signal.SIGKILL, log.read()
  assert _latest(killed) is not None and _latest(killed) < STEPS, "the kill missed the run"

  assert cli.main([*ARGS, "--workdir", reference], DEFAULT) == cli.EXIT_OK
  assert cli.main([*ARGS, "--workdir", killed], DEFAULT) == cli.EXIT_OK

  resumed = json.load(open(os.path.join(killed, "summary.json")))
  assert 0 < resumed["resumed_from"] < STEPS and resumed["steps_done"] == STEPS
  want, got = checkpoint.load_raw(reference), checkpoint.load_raw(killed)
  assert jax.tree.structure(want) == jax.tree.structure(got)
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
    assert np.array_equal(a, b)
  assert int(got["state"]["step"]) == STEPS and (got["diverged_at"] == -1).all()
  with open(os.path.join(reference, "metrics.jsonl"), "rb") as f_ref, \
      open(os.path.join(killed, "metrics.jsonl"), "rb") as f_got:
    assert f_ref.read() == f_got.read()  # same rows, same bits, no duplicates
  assert sorted(int(n) for n in os.listdir(os.path.join(killed, "checkpoints"))
                if n.isdigit()) == [270, 300]  # max_to_keep=2
  for name in ("provenance.json", "summary.md", "curves.png", "samples.png"):
    assert os.path.exists(os.path.join(killed, name)), name
  assert os.listdir(os.path.join(killed, "tensorboard"))


@pytest.mark.slow
def test_sigterm_is_handled_like_ctrl_c_and_resumes(tmp_path):
  workdir = str(tmp_path / "run")
  log = open(tmp_path / "run.log", "w+")
  proc = subprocess.Popen([sys.executable, "-m", "experiments.run", *ARGS, "--workdir", workdir],
                          cwd=ROOT, stdout=log, stderr=log)
  deadline = time.time() + 240
  while _latest(workdir) is None and proc.poll() is None and time.time() < deadline:
    time.sleep(0.005)
  proc.send_signal(signal.SIGTERM)
  proc.wait(timeout=120)
  log.seek(0)
  out = log.read()
  if proc.returncode == cli.EXIT_OK:
    pytest.skip("the run finished before the signal arrived")
  assert proc.returncode == cli.EXIT_TERMINATED, out
  assert "terminated (SIGTERM)" in out and f"--workdir={workdir}" in out
  assert "Traceback" not in out, out
  assert cli.main([*ARGS, "--workdir", workdir], DEFAULT) == cli.EXIT_OK  # resumable
  assert json.load(open(os.path.join(workdir, "summary.json")))["steps_done"] == STEPS


@pytest.mark.slow  # a subprocess run, its resumption and an uninterrupted run (~40 s)
def test_ctrl_c_before_the_first_checkpoint_saves_the_step_and_resumes_bit_identical(
    tmp_path, launcher_with_sigint):
  """Ctrl-C after ≥ 50 steps of a run whose first periodic checkpoint is at step 1000: the
  interrupt saves the last finished step, names it, and the resumed run continues from there
  and ends with the bits of an uninterrupted run (metrics and checkpoint)."""
  steps = ["--config.steps=1500", "--config.checkpoint_every=1000"]
  args = [a for a in ARGS if not a.startswith(("--config.steps=", "--config.checkpoint_every="))]
  stopped, reference = str(tmp_path / "stopped"), str(tmp_path / "reference")
  log = open(tmp_path / "stopped.log", "w+")
  proc = subprocess.Popen([*launcher_with_sigint, *args, *steps, "--workdir", stopped],
                          cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
  metrics, deadline = os.path.join(stopped, "metrics.jsonl"), time.time() + 240
  while proc.poll() is None and time.time() < deadline and (
      not os.path.exists(metrics) or sum(1 for _ in open(metrics)) < 50):
    time.sleep(0.05)
  proc.send_signal(signal.SIGINT)
  proc.wait(timeout=120)
  log.seek(0)
  out = log.read()
  assert proc.returncode == cli.EXIT_INTERRUPTED, out
  saved = _latest(stopped)
  assert saved is not None and 50 <= saved < 1000, (saved, out)
  assert f"to resume from step {saved}." in out and "Traceback" not in out, out
  assert cli.main([*args, *steps, "--workdir", stopped], DEFAULT) == cli.EXIT_OK
  assert json.load(open(os.path.join(stopped, "summary.json")))["resumed_from"] == saved
  assert cli.main([*args, *steps, "--workdir", reference], DEFAULT) == cli.EXIT_OK
  assert (open(os.path.join(stopped, "metrics.jsonl"), "rb").read()
          == open(os.path.join(reference, "metrics.jsonl"), "rb").read())
  for a, b in zip(jax.tree.leaves(checkpoint.load_raw(stopped)),
                  jax.tree.leaves(checkpoint.load_raw(reference))):
    np.testing.assert_array_equal(a, b)

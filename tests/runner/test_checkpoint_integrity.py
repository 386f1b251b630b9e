"""Checkpoint integrity: checksummed steps, fallback to the newest intact one, disk full, summaries."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from ebm_gan.runner import checkpoint
from ebm_gan.runner import cli
from ebm_gan.runner import integrity
from ebm_gan.runner import loop
from ebm_gan.runner import record
from ebm_gan.runner.registry import ConfigError
from tiny_runs import DEFAULT, ROOT, tiny


def _tree(step):
  return {"state": {"w": jnp.arange(4096, dtype=jnp.float32) * step, "step": jnp.int32(step)},
          "diverged_at": jnp.full((1,), -1, jnp.int32)}


def _saved(tmp_path, steps=(10, 20)):
  ckpt = checkpoint.Checkpoints(str(tmp_path), every=10, max_to_keep=5)
  for s in steps:
    ckpt.save(s, _tree(s))
  return ckpt


def _largest_file(folder):
  files = [os.path.join(r, n) for r, _, ns in os.walk(folder) for n in ns
           if n != integrity.CHECKSUM_FILE]
  return max(files, key=os.path.getsize)


def _flip_bytes(path, n=64):
  with open(path, "r+b") as f:
    data = bytearray(f.read())
    mid = len(data) // 2
    for i in range(mid, min(mid + n, len(data))):
      data[i] ^= 0xFF
    f.seek(0)
    f.write(data)


def _truncate(path):
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


@pytest.mark.parametrize("damage", [_flip_bytes, _truncate,
                                    lambda p: os.remove(os.path.join(
                                        os.path.dirname(p), integrity.CHECKSUM_FILE))])
def test_a_damaged_newest_step_falls_back_to_the_intact_one(tmp_path, capsys, damage):
  ckpt = _saved(tmp_path)
  newest = ckpt.step_folder(20)
  if damage is _flip_bytes or damage is _truncate:
    damage(_largest_file(newest))
  else:  # the checksum never written: a save interrupted between orbax and the seal
    damage(os.path.join(newest, "x"))
  step, tree = ckpt.restore(_tree(0))
  assert step == 10
  np.testing.assert_array_equal(tree["state"]["w"], np.arange(4096, dtype=np.float32) * 10)
  err = capsys.readouterr().err
  assert "checkpoint step 20" in err and "damaged" in err and "step 10" in err
  assert os.path.isdir(os.path.join(tmp_path, checkpoint.DAMAGED_SUBDIR, "20"))
  ckpt.save(20, _tree(20))  # the step can be written again
  assert ckpt.restore(_tree(0))[0] == 20
  ckpt.close()


def test_the_checksum_names_what_changed(tmp_path):
  ckpt = _saved(tmp_path, steps=(10,))
  folder = ckpt.step_folder(10)
  assert integrity.damage(folder) is None
  _flip_bytes(_largest_file(folder))
  assert "differ" in integrity.damage(folder)
  _truncate(_largest_file(folder))
  assert "bytes" in integrity.damage(folder) and "truncated" in integrity.damage(folder)
  ckpt.close()


def test_no_intact_step_is_refused_and_nothing_is_moved(tmp_path):
  ckpt = _saved(tmp_path)
  for s in (10, 20):
    _flip_bytes(_largest_file(ckpt.step_folder(s)))
  with pytest.raises(ConfigError, match=r"no checkpoint step in it is intact.*step 20.*step 10"):
    ckpt.restore(_tree(0))
  assert sorted(os.listdir(ckpt.directory)) == ["10", "20"]
  assert not os.path.exists(os.path.join(tmp_path, checkpoint.DAMAGED_SUBDIR))
  ckpt.close()


def _unseal(folder):
  os.remove(os.path.join(folder, integrity.CHECKSUM_FILE))  # killed between orbax and the seal


def test_only_unfinished_saves_are_set_aside_and_the_run_starts_over(tmp_path, capsys):
  """A run killed during its first save leaves a step without its seal and nothing intact:
  it is moved aside (kept, not deleted) and the run starts from step 0."""
  ckpt = _saved(tmp_path, steps=(10,))
  _unseal(ckpt.step_folder(10))
  ckpt.set_aside_unfinished()
  assert ckpt.latest_step() is None
  assert "no save had finished, so the run starts from step 0" in capsys.readouterr().err
  assert os.listdir(os.path.join(tmp_path, checkpoint.DAMAGED_SUBDIR)) == ["10"]
  ckpt.close()


@pytest.mark.parametrize("case", ["one intact", "real damage"])
def test_unfinished_saves_beside_intact_or_damaged_steps_are_left_to_restore(tmp_path, case):
  """With an intact step restore falls back to it; with real damage the run is refused
  (above): either way set_aside_unfinished moves nothing."""
  ckpt = _saved(tmp_path)
  _unseal(ckpt.step_folder(20))
  if case == "real damage":
    _flip_bytes(_largest_file(ckpt.step_folder(10)))
  ckpt.set_aside_unfinished()
  assert sorted(os.listdir(ckpt.directory)) == ["10", "20"]
  assert not os.path.exists(os.path.join(tmp_path, checkpoint.DAMAGED_SUBDIR))
  ckpt.close()


def test_disk_full_during_a_save_is_one_paragraph_naming_the_last_intact_step(tmp_path,
                                                                             monkeypatch):
  ckpt = _saved(tmp_path, steps=(10,))

  def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")
  monkeypatch.setattr(ocp.CheckpointManager, "save", full)
  with pytest.raises(checkpoint.StorageError) as info:
    ckpt.save(20, _tree(20))
  msg = str(info.value)
  assert "save checkpoint step 20" in msg and ckpt.directory in msg and "MiB free" in msg
  assert "last intact checkpoint is step 10" in msg and "same command" in msg
  assert "\n" not in msg
  ckpt.close()


def test_orbax_resource_exhausted_counts_as_a_full_disk():
  wrapped = ValueError("while writing")
  wrapped.__cause__ = RuntimeError("RESOURCE_EXHAUSTED: Error writing local file")
  assert checkpoint.is_storage_failure(wrapped)
  assert not checkpoint.is_storage_failure(ValueError("shapes differ"))
  assert not checkpoint.is_storage_failure(OSError(errno.ENOENT, "no such file"))


def test_signals_during_a_save_are_delivered_after_it(tmp_path):
  ckpt = checkpoint.Checkpoints(str(tmp_path), every=10, max_to_keep=5)
  previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # see launcher_with_sigint
  try:
    with pytest.raises(KeyboardInterrupt):
      with checkpoint.signals_held():
        signal.raise_signal(signal.SIGINT)
        ckpt.save(10, _tree(10))  # still runs to its end
    assert integrity.damage(ckpt.step_folder(10)) is None
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
  finally:
    signal.signal(signal.SIGINT, previous)
    ckpt.close()


def test_a_worse_summary_keeps_the_good_one_aside(tmp_path, capsys):
  record.write_summary(str(tmp_path), {"status": "ok", "modes_covered": np.int64(25)})
  record.write_summary(str(tmp_path), {"status": "ok", "modes_covered": 24})
  assert not os.path.exists(tmp_path / record.PREVIOUS_JSON)
  record.write_summary(str(tmp_path), {"status": "diverged", "modes_covered": 3})
  assert json.load(open(tmp_path / record.PREVIOUS_JSON)) == {"status": "ok", "modes_covered": 24}
  assert json.load(open(tmp_path / record.SUMMARY_JSON))["status"] == "diverged"
  assert os.path.exists(tmp_path / record.PREVIOUS_MD)
  assert "summary.previous.json" in capsys.readouterr().err


# Through the launcher: a tiny model (for testing only), checkpoints at steps 30 and 60.
STEPS = 60
ARGS = tiny(STEPS, checkpoint_every=30, max_to_keep=3)


def _assert_same_arrays(want, got):
  flat_want, flat_got = jax.tree.leaves(want), jax.tree.leaves(got)
  assert jax.tree.structure(want) == jax.tree.structure(got)
  for a, b in zip(flat_want, flat_got):
    assert np.array_equal(a, b)


@pytest.mark.slow  # two short runs through the launcher (~25 s on the shared 2-core machine)
def test_flipped_bytes_resume_from_the_previous_step_and_end_bit_identical(tmp_path, capsys):
  workdir = str(tmp_path / "run")
  assert cli.main([*ARGS, "--workdir", workdir], DEFAULT) == cli.EXIT_OK
  uninterrupted = checkpoint.load_raw(workdir, STEPS)
  wall_record = _wall_record(workdir)
  assert 0 < wall_record["at_step"]["30"] < wall_record["at_step"]["60"]
  _flip_bytes(_largest_file(os.path.join(workdir, "checkpoints", str(STEPS))))
  capsys.readouterr()
  assert cli.main([*ARGS, "--workdir", workdir], DEFAULT) == cli.EXIT_OK
  err = capsys.readouterr().err
  assert f"checkpoint step {STEPS}" in err and "resuming from step 30" in err
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  assert summary["resumed_from"] == 30 and summary["steps_done"] == STEPS
  _assert_same_arrays(uninterrupted, checkpoint.load_raw(workdir, STEPS))
  # The wall time goes on from the first launch's at step 30 (not from 0, not from its 60),
  # and a third launch, which finds the run finished and evaluates it again, keeps it.
  first_at_30 = wall_record["at_step"]["30"]
  assert summary["wall_s_from_step"] == 0
  assert summary["wall_s"] - summary["segment_wall_s"] == pytest.approx(first_at_30, abs=1e-3)
  second = _wall_record(workdir)
  assert cli.main([*ARGS, "--workdir", workdir], DEFAULT) == cli.EXIT_OK
  again = json.load(open(os.path.join(workdir, "summary.json")))
  assert again["resumed_from"] == STEPS and again["wall_s_from_step"] == 0
  assert again["wall_s"] - again["segment_wall_s"] == pytest.approx(
      second["at_step"][str(STEPS)], abs=1e-3)
  # the record at step 60 misses only what the second launch did after that save (ms)
  assert summary["wall_s"] - 1.0 <= again["wall_s"] <= summary["wall_s"] + again["segment_wall_s"]
  launches = record.read_provenance(workdir)
  assert launches["from_step"] == 0 and [r["from_step"] for r in launches["resumed"]] == [30, 60]


def _wall_record(workdir):
  with open(os.path.join(workdir, loop.WALL_RECORD)) as f:
    return json.load(f)


@pytest.mark.slow  # two short runs through the launcher
def test_disk_full_exits_5_with_one_paragraph_then_resumes(tmp_path, capsys, monkeypatch):
  workdir = str(tmp_path / "run")
  real_save, calls = ocp.CheckpointManager.save, []

  def full_at_second_save(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
      raise ValueError("RESOURCE_EXHAUSTED: Error writing local file: No space left on device")
    return real_save(self, *args, **kwargs)
  monkeypatch.setattr(ocp.CheckpointManager, "save", full_at_second_save)
  assert cli.main([*ARGS, "--workdir", workdir], DEFAULT) == cli.EXIT_STORAGE
  err = capsys.readouterr().err
  assert err.startswith("error: could not save checkpoint step 60 in ")
  assert "MiB free" in err and "last intact checkpoint is step 30" in err
  assert "Traceback" not in err and err.count("\n") == 1
  monkeypatch.setattr(ocp.CheckpointManager, "save", real_save)
  assert cli.main([*ARGS, "--workdir", workdir], DEFAULT) == cli.EXIT_OK
  assert json.load(open(os.path.join(workdir, "summary.json")))["resumed_from"] == 30


def _saving_or_saved(workdir):
  folder = os.path.join(workdir, "checkpoints")
  names = os.listdir(folder) if os.path.isdir(folder) else []
  return any("tmp" in n or n.isdigit() for n in names)


@pytest.mark.slow  # a subprocess run, its resumption and an uninterrupted run (~60 s under load)
def test_ctrl_c_during_a_save_is_quiet_and_the_resumed_run_is_bit_identical(tmp_path,
                                                                           launcher_with_sigint):
  stopped, reference = str(tmp_path / "stopped"), str(tmp_path / "reference")
  args = ["--config.steps=300" if a.startswith("--config.steps=") else a for a in ARGS]
  log = open(tmp_path / "stopped.log", "w+")  # a file, not a pipe: a full pipe would block it
  proc = subprocess.Popen([*launcher_with_sigint, *args, "--workdir", stopped],
                          cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
  deadline = time.time() + 240
  while not _saving_or_saved(stopped) and proc.poll() is None and time.time() < deadline:
    time.sleep(0.001)
  proc.send_signal(signal.SIGINT)  # as the first save starts (orbax temp folder) or just ended
  proc.wait()
  log.seek(0)
  out = log.read()
  assert proc.returncode == cli.EXIT_INTERRUPTED, out
  assert "Traceback" not in out and "interrupted; run the same command" in out, out
  assert checkpoint.newest_intact_step(stopped) is not None  # the save finished before stopping

  assert cli.main([*args, "--workdir", reference], DEFAULT) == cli.EXIT_OK
  assert cli.main([*args, "--workdir", stopped], DEFAULT) == cli.EXIT_OK
  assert 0 < json.load(open(os.path.join(stopped, "summary.json")))["resumed_from"] < 300
  _assert_same_arrays(checkpoint.load_raw(reference), checkpoint.load_raw(stopped))


def test_a_users_folder_named_like_a_step_is_moved_aside_never_rotated_away(tmp_path, capsys):
  """``checkpoints/5`` holding a user's file, beside the run's steps 10 and 20 with
  max_to_keep=2: it used to count as the oldest step and be deleted by the next save. It is
  moved to checkpoints.damaged/5 with its file, the run resumes from 20, and rotation then
  deletes only the run's own step 10."""
  _saved(tmp_path).close()
  user = tmp_path / "checkpoints" / "5"
  user.mkdir()
  (user / "notes.txt").write_text("mine")
  ckpt = checkpoint.Checkpoints(str(tmp_path), every=10, max_to_keep=2)
  ckpt.set_aside_unfinished()
  assert "checkpoint step 5" in capsys.readouterr().err
  assert ckpt.restore(_tree(0))[0] == 20
  ckpt.save(30, _tree(30))
  ckpt.close()
  assert (tmp_path / checkpoint.DAMAGED_SUBDIR / "5" / "notes.txt").read_text() == "mine"
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["20", "30"]

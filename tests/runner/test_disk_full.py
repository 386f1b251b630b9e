"""A full disk at start, at a checkpoint and in the metrics log: one paragraph, exit 5, no
stray temp file, no orbax tracebacks.

Measured by hand on a 2 MiB tmpfs (smoke run): 4 KB free at start was a traceback from
``write_marker`` and left an empty ``.ebm_gan_run.json.tmp`` that made every later run refuse
the folder; 200 KB free (full at the first checkpoint) printed 467 lines, 56 of them
tracebacks from orbax, asyncio and TensorBoard's writer, around the one paragraph. Now each
is that paragraph alone. These tests make the disk full by raising ENOSPC where the write is.
"""

import errno
import logging
import os
import sys

import numpy as np
import pytest

from ebm_gan.runner import checkpoint
from ebm_gan.runner import cli
from ebm_gan.runner import metrics_log
from ebm_gan.runner import tables
from ebm_gan.runner import workdir as workdir_lib
from tiny_runs import DEFAULT, ROOT


def _no_space(*args, **kwargs):
  raise OSError(errno.ENOSPC, "No space left on device")


def _open_on_a_full_disk(path, mode="r", **kwargs):
  """``open`` whose files take a byte, then find the disk full."""
  f = open(path, mode, **kwargs)  # pylint: disable=unspecified-encoding
  real_write = f.write

  def write(text):
    real_write(text[:1])
    f.flush()
    _no_space()
  f.write = write
  return f


def test_a_full_disk_at_start_is_one_paragraph_and_leaves_nothing_that_blocks_a_rerun(
    tmp_path, monkeypatch, capsys):
  run = str(tmp_path / "run")
  monkeypatch.setattr(tables, "open", _open_on_a_full_disk, raising=False)  # the marker's write
  assert cli.main(["--config.smoke=true", "--workdir", run], DEFAULT) == cli.EXIT_STORAGE
  err = capsys.readouterr().err
  assert err.startswith("error: could not write ") and err.count("\n") == 1, err
  assert workdir_lib.MARKER in err and "MiB free" in err and "same command" in err, err
  assert "Traceback" not in err
  assert sorted(os.listdir(run)) == [workdir_lib.LOCK]  # the temp marker was removed
  monkeypatch.undo()  # space freed: the same folder is claimed
  identity = {"program": "ebm_gan", "kind": "run", "fingerprint": "f"}
  workdir_lib.claim(run, identity).release()
  assert workdir_lib.read_marker(run) == identity


def test_a_temp_marker_left_by_an_older_crash_does_not_block_the_folder(tmp_path):
  run = tmp_path / "run"
  run.mkdir()
  (run / (workdir_lib.MARKER + ".tmp")).write_text("")
  identity = {"program": "ebm_gan", "kind": "run", "fingerprint": "f"}
  workdir_lib.claim(str(run), identity).release()
  assert workdir_lib.read_marker(str(run)) == identity


def test_a_full_disk_at_a_checkpoint_hides_orbax_noise_and_says_what_it_needs(
    tmp_path, monkeypatch, capsys):
  ckpt = checkpoint.Checkpoints(str(tmp_path), every=10, max_to_keep=2)
  tree = {"w": np.zeros((256, 256), np.float32)}  # 0.25 MiB

  def noisy_full_save(*args, **kwargs):  # what orbax's threads did on a full disk
    print("Traceback (most recent call last):\nRuntimeError: Event loop is closed",
          file=sys.stderr)
    logging.getLogger("absl").error("_SignalingThread.run() raised an exception")
    _no_space()
  monkeypatch.setattr(ckpt._manager, "save", noisy_full_save)  # pylint: disable=protected-access
  with pytest.raises(checkpoint.StorageError) as info:
    ckpt.save(10, tree)
  err = capsys.readouterr().err
  assert "Traceback" not in err and "Event loop" not in err and "SignalingThread" not in err
  assert "needs at least 0.25 MiB" in str(info.value), info.value
  assert logging.getLogger("absl").isEnabledFor(logging.ERROR)  # logging restored after it
  ckpt.close()


def test_what_a_successful_save_prints_is_still_printed(tmp_path, capsys):
  ckpt = checkpoint.Checkpoints(str(tmp_path), every=10, max_to_keep=2)
  real_save = ckpt._manager.save  # pylint: disable=protected-access

  def chatty_save(*args, **kwargs):
    print("orbax: a warning worth reading", file=sys.stderr)
    return real_save(*args, **kwargs)
  ckpt._manager.save = chatty_save  # pylint: disable=protected-access
  ckpt.save(10, {"w": np.zeros(3, np.float32)})
  assert "a warning worth reading" in capsys.readouterr().err
  ckpt.close()


def test_a_full_disk_in_the_metrics_log_names_the_file(tmp_path):
  log = metrics_log.MetricsLog(str(tmp_path), tensorboard_every=0)
  log._file.flush = _no_space  # pylint: disable=protected-access
  with pytest.raises(OSError) as info:
    log.write([{"step": 0, "l3": 1.0}])
  assert info.value.filename == os.path.join(str(tmp_path), metrics_log.METRICS)

"""``metrics.jsonl`` (one JSON object per logged step) and its TensorBoard mirror.

On resume from a checkpoint at step s the file is rebuilt from its intact rows with
``step <= s`` (rewritten atomically), so a resumed run's file is byte-identical to an
uninterrupted run's; damaged lines are set aside beside it, never deleted.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Iterable

from ebm_gan.runner import tables

METRICS = "metrics.jsonl"
METRICS_DAMAGED = "metrics.damaged.jsonl"  # damaged lines set aside on resume


def _json_value(v):
  return float(v)  # NaN/Inf are written as NaN/Infinity, which json.loads reads back


def _summary_writer_class():
  """tensorboardX's ``SummaryWriter``, imported without importing PyTorch.

  tensorboardX imports torch at import time wherever it is installed (the ``bench`` extra
  installs it), only to accept torch tensors, which the runner never passes (what that costs
  a launch: BUILD.md, Dependencies and why). A ``None`` entry in
  ``sys.modules`` makes ``import torch`` fail with ImportError for that import only, the
  fallback tensorboardX has for machines without torch; the entry is removed at once, so a
  later ``import torch`` works. If torch is already imported, nothing is blocked.
  """
  block = "torch" not in sys.modules and "tensorboardX" not in sys.modules
  if block:
    sys.modules["torch"] = None
  try:
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
  finally:
    if block:
      del sys.modules["torch"]
  return SummaryWriter


class MetricsLog:
  """``metrics.jsonl`` plus TensorBoard scalars, resumable at a checkpoint step.

  Args:
    workdir: the run folder.
    resume_step: the step of the checkpoint the run resumes from (0 for a fresh run):
      rows after it are dropped (the resumed run writes them again, with the same values),
      TensorBoard events after it are purged. Damaged lines (not a JSON row with a
      ``step``, or torn by a kill) are moved, with their line numbers, to
      ``metrics.damaged.jsonl`` beside it, never deleted, and reported on stderr;
      :attr:`recovery` counts them for the summary.
    tensorboard_every: write every k-th logged step to TensorBoard (0: no TensorBoard).
  """

  def __init__(self, workdir: str, resume_step: int = 0, tensorboard_every: int = 1):
    self.path = os.path.join(workdir, METRICS)
    self.recovery: dict = {}
    self._recover(resume_step)
    self._file = open(self.path, "a")
    self._tb_every = tensorboard_every
    self._tb = None
    if tensorboard_every:
      self._tb = _summary_writer_class()(os.path.join(workdir, "tensorboard"),
                                         purge_step=resume_step + 1 if resume_step else None,
                                         flush_secs=30)

  def _recover(self, step: int) -> None:
    """Rewrites the log with its intact rows up to ``step``; sets damaged lines aside."""
    if not os.path.exists(self.path):
      return
    keep, damaged = [], []
    with open(self.path, encoding="utf-8", errors="replace") as f:
      for number, line in enumerate(f, 1):
        row = _row(line)
        if row is None:
          if line.strip():
            damaged.append({"line": number, "text": line.rstrip("\n")})
        elif step and row["step"] <= step:
          keep.append(json.dumps(row) + "\n")
    if damaged:
      aside = os.path.join(os.path.dirname(self.path), METRICS_DAMAGED)
      with open(aside, "a") as f:
        f.writelines(json.dumps(d) + "\n" for d in damaged)
      shown = ", ".join(str(d["line"]) for d in damaged[:8]) + (", ..." if len(damaged) > 8 else "")
      print(f"warning: {self.path}: {len(damaged)} damaged line(s) (line {shown}) moved to "
            f"{aside}; the log keeps its {len(keep)} intact rows up to step {step}.",
            file=sys.stderr)
      self.recovery = {"metrics_lines_set_aside": len(damaged), "metrics_rows_kept": len(keep)}
    tables.write_text_atomically(self.path, "".join(keep))

  def write(self, rows: Iterable[dict]) -> None:
    """Appends rows (each with 'step'); flushed so that a killed run loses nothing written."""
    try:
      self._append(rows)
    except OSError as e:
      tables.name_the_file(e, self.path)
      raise

  def _append(self, rows: Iterable[dict]) -> None:
    for row in rows:
      row = {k: (v if isinstance(v, (bool, int, str)) else _json_value(v))
             for k, v in row.items()}
      self._file.write(json.dumps(row) + "\n")
      if self._tb is not None and row["step"] % self._tb_every == 0:
        for k, v in row.items():
          if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
            self._tb.add_scalar(k, v, row["step"])
    self._file.flush()

  def close(self) -> None:
    """Flushes and closes the JSON-lines file and the event files."""
    self._file.close()
    if self._tb is not None:
      self._tb.close()


def _row(line: str) -> dict | None:
  """The metrics row of a line, or None when the line is damaged (no JSON object with an
  integer ``step``)."""
  try:
    row = json.loads(line)
  except ValueError:
    return None
  if not isinstance(row, dict) or isinstance(row.get("step"), bool) or not isinstance(
      row.get("step"), int):
    return None
  return row


def read_metrics(workdir: str) -> list[dict]:
  """The rows of ``<workdir>/metrics.jsonl``."""
  with open(os.path.join(workdir, METRICS)) as f:
    return [json.loads(line) for line in f if line.strip()]

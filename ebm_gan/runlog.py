"""What a run folder records: metrics (JSON lines + TensorBoard), provenance, summaries.

* :class:`MetricsLog` appends one JSON object per logged step to
  ``metrics.jsonl`` and mirrors the scalars to TensorBoard event files
  (tensorboardX). On resume from a checkpoint at step s it first truncates
  the file to the rows with ``step <= s`` (rewritten atomically), so a resumed
  run's file is byte-identical to an uninterrupted run's.
* :func:`write_provenance` saves the resolved config, the package versions,
  the git revision and the command line.
* :func:`format_table` / :func:`write_summary` print and save the final table.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from typing import Iterable

import numpy as np

METRICS, SUMMARY_JSON, SUMMARY_MD = "metrics.jsonl", "summary.json", "summary.md"
PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "ml_collections", "numpy",
            "tensorboardX", "matplotlib", "ebm-gan")
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _json_value(v):
  return float(v)  # NaN/Inf are written as NaN/Infinity, which json.loads reads back


class MetricsLog:
  """``metrics.jsonl`` plus TensorBoard scalars, resumable at a checkpoint step.

  Args:
    workdir: the run folder.
    resume_step: the step of the checkpoint the run resumes from (0 for a fresh run):
      rows after it are dropped, TensorBoard events after it are purged.
    tensorboard_every: write every k-th logged step to TensorBoard (0: no TensorBoard).
  """

  def __init__(self, workdir: str, resume_step: int = 0, tensorboard_every: int = 1):
    self.path = os.path.join(workdir, METRICS)
    self._truncate(resume_step)
    self._file = open(self.path, "a")
    self._tb_every = tensorboard_every
    self._tb = None
    if tensorboard_every:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"),
                               purge_step=resume_step + 1 if resume_step else None,
                               flush_secs=30)

  def _truncate(self, step: int) -> None:
    if not os.path.exists(self.path):
      return
    keep = []
    with open(self.path) as f:
      for line in f:
        try:
          row = json.loads(line)
        except json.JSONDecodeError:
          break  # a line cut short by a kill: everything after it is newer
        if not step or row.get("step", step + 1) > step:
          break
        keep.append(line if line.endswith("\n") else line + "\n")
    tmp = self.path + ".tmp"
    with open(tmp, "w") as f:
      f.writelines(keep)
    os.replace(tmp, self.path)

  def write(self, rows: Iterable[dict]) -> None:
    """Appends rows (each with 'step'); flushed so that a killed run loses nothing written."""
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


def read_metrics(workdir: str) -> list[dict]:
  """The rows of ``<workdir>/metrics.jsonl``."""
  with open(os.path.join(workdir, METRICS)) as f:
    return [json.loads(line) for line in f if line.strip()]


def git_revision(repo: str = _REPO) -> str:
  """``HEAD``'s commit of the repository holding the package (+'-dirty'), or 'unknown'."""
  try:
    rev = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True,
                         text=True, timeout=10, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return rev + ("-dirty" if dirty else "")
  except (OSError, subprocess.SubprocessError):
    return "unknown"


def package_versions(names: Iterable[str] = PACKAGES) -> dict:
  """Installed versions of ``names`` (None for a package that is not installed)."""
  out = {"python": platform.python_version()}
  for name in names:
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      out[name] = None
  return out


def write_provenance(workdir: str, config, argv: Iterable[str] | None = None) -> None:
  """Saves ``config.json`` (the resolved config) and ``provenance.json`` in ``workdir``."""
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  info = {"versions": package_versions(), "git_revision": git_revision(),
          "argv": list(sys.argv if argv is None else argv), "platform": platform.platform()}
  with open(os.path.join(workdir, "provenance.json"), "w") as f:
    json.dump(info, f, indent=2)


def format_table(rows: dict) -> str:
  """A two-column markdown table of a flat dict."""
  width = max([len("metric")] + [len(k) for k in rows])
  lines = [f"| {'metric'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
  for k, v in rows.items():
    text = f"{v:.4g}" if isinstance(v, float) else str(v)
    lines.append(f"| {k.ljust(width)} | {text} |")
  return "\n".join(lines)


def flat_scalars(summary: dict) -> dict:
  """The scalar entries of a summary (no lists or dicts), numpy scalars as Python numbers."""
  out = {}
  for k, v in summary.items():
    if isinstance(v, (list, dict, tuple)):
      continue
    out[k] = v.item() if isinstance(v, np.generic) else v
  return out


def write_summary(workdir: str, summary: dict) -> None:
  """Saves ``summary.json`` and ``summary.md`` (the table printed at the end)."""
  clean = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in summary.items()}
  with open(os.path.join(workdir, SUMMARY_JSON), "w") as f:
    json.dump(clean, f, indent=2, default=str)
  with open(os.path.join(workdir, SUMMARY_MD), "w") as f:
    f.write(format_table(flat_scalars(clean)) + "\n")

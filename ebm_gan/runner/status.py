"""A run's (or sweep member's) status: one enum, written into summaries, tables and exit codes.

A :class:`Status` is a ``str`` (``StrEnum``), so it is written to JSON and CSV as its value
and compares equal to the text read back from a summary.
"""

from __future__ import annotations

import enum
from typing import Iterable


class Status(enum.StrEnum):
  """How a run ended, or where a sweep member is."""
  OK = "ok"              # trained and evaluated
  DIVERGED = "diverged"  # NaN/Inf or a loss above divergence_bound: kept at its last good state
  FAILED = "failed"      # the program raised: the error is in the member's row
  RUNNING = "running"    # a shared sweep's member another process is training


def worst(statuses: Iterable[str]) -> Status:
  """'failed' if any member failed, else 'diverged' if any diverged, else 'ok'."""
  found = set(statuses)
  return next((s for s in (Status.FAILED, Status.DIVERGED) if s in found), Status.OK)

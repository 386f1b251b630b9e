"""Tables the runner prints and saves: one markdown writer, one CSV writer, atomic files."""

from __future__ import annotations

import csv
import io
import math
import os
from typing import Sequence


def save_atomically(path: str, write) -> None:
  """Calls ``write(tmp)`` for a temporary file beside ``path``, then renames it over ``path``.

  The rename replaces the NAME ``path``: a symlink there is replaced, never the file it points
  to, so nothing outside the run folder is written; and no reader sees half a file. The
  temporary name keeps the extension (matplotlib and numpy read the format from it).
  """
  tmp = temp_path(path)
  try:
    write(tmp)
    os.replace(tmp, path)
  except OSError as e:
    name_the_file(e, path)
    raise
  finally:
    if os.path.lexists(tmp):
      os.remove(tmp)


def temp_path(path: str) -> str:
  """The temporary name :func:`save_atomically` writes beside ``path`` before renaming it."""
  folder, name = os.path.split(path)
  root, ext = os.path.splitext(name)
  return os.path.join(folder, f".{root}.tmp{ext}")


def write_text_atomically(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` through :func:`save_atomically`."""
  def write(tmp):
    with open(tmp, "w", newline="") as f:
      f.write(text)
  save_atomically(path, write)


def name_the_file(e: OSError, path: str) -> None:
  """Gives a failed write's error the file's name when it has none (a write or a flush that
  fails on a full disk names no file), so that the paragraph reporting it can."""
  if e.filename is None:
    e.filename = path


def text(value) -> str:
  """A cell: floats with 4 significant digits, None as empty, anything else as str."""
  if isinstance(value, float):
    return "nan" if math.isnan(value) else f"{value:.4g}"
  return "" if value is None else str(value)


def columns(rows: Sequence[dict]) -> list[str]:
  """Every key of ``rows``, in order of first appearance."""
  cols: list[str] = []
  for row in rows:
    cols.extend(k for k in row if k not in cols)
  return cols


def markdown(rows: Sequence[dict], cols: Sequence[str] | None = None) -> str:
  """A markdown table of ``rows`` (one dict each), columns padded to their widest cell."""
  cols = list(cols or columns(rows))
  cells = [[text(r.get(c)).replace("|", "/") for c in cols] for r in rows]
  widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
  line = lambda values: "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"
  return "\n".join([line(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                   + [line(row) for row in cells])


def summary_table(summary: dict) -> str:
  """The two-column (metric, value) markdown table of a flat dict."""
  return markdown([{"metric": k, "value": v} for k, v in summary.items()], ["metric", "value"])


def csv_text(rows: Sequence[dict], cols: Sequence[str]) -> str:
  """The CSV of ``rows`` over ``cols`` (a missing cell empty), header first."""
  out = io.StringIO()
  writer = csv.DictWriter(out, fieldnames=list(cols), restval="")
  writer.writeheader()
  writer.writerows([{c: row.get(c, "") for c in cols} for row in rows])
  return out.getvalue()


def write(workdir: str, stem: str, rows: Sequence[dict]) -> tuple[str, str]:
  """Writes ``<stem>.csv`` and ``<stem>.md`` (one row per dict), atomically; returns their paths."""
  cols = columns(rows)
  csv_path, md_path = (os.path.join(workdir, f"{stem}.{ext}") for ext in ("csv", "md"))
  write_text_atomically(csv_path, csv_text(rows, cols))
  write_text_atomically(md_path, markdown(rows, cols) + "\n")
  return csv_path, md_path

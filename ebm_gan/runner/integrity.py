"""Checksums of saved checkpoint steps: written once a step is complete, verified on restore.

A checkpoint step is a folder of files written by orbax. Once orbax has
finished a step, :func:`seal` writes ``ebm_gan_sha256.json`` inside it: the
SHA-256 and size of every other file of the step, by relative path. The file
is written to a temporary name, flushed to disk and renamed, so it is either
absent or complete. :func:`damage` re-reads the step and names what does not
match: a file changed (flipped bytes), truncated, missing or added, an
unreadable file, or no checksum at all (a save that did not finish, or a
folder written by another tool). A step is used only when :func:`damage`
finds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os

CHECKSUM_FILE = "ebm_gan_sha256.json"
_BLOCK = 1 << 20


def _sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(_BLOCK), b""):
      h.update(block)
  return h.hexdigest()


def file_digests(folder: str) -> dict[str, list]:
  """``{relative path: [size in bytes, sha256 hex]}`` of every file under ``folder`` (sorted).

  The checksum file itself is left out. Raises OSError when a file cannot be read.
  """
  out = {}
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    for name in sorted(files):
      path = os.path.join(root, name)
      rel = os.path.relpath(path, folder)
      if rel not in (CHECKSUM_FILE, CHECKSUM_FILE + ".tmp"):
        out[rel] = [os.path.getsize(path), _sha256(path)]
  return out


def seal(folder: str) -> None:
  """Writes the checksums of ``folder``'s files atomically into ``folder/ebm_gan_sha256.json``."""
  target = os.path.join(folder, CHECKSUM_FILE)
  tmp = target + ".tmp"
  digests = file_digests(folder)
  with open(tmp, "w") as f:
    json.dump({"algorithm": "sha256", "files": digests}, f, indent=1)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, target)


UNSEALED = "it has no checksum (its save did not finish)"


def damage(folder: str) -> str | None:
  """What is wrong with the step in ``folder`` (one short phrase), or None when it is intact."""
  try:
    with open(os.path.join(folder, CHECKSUM_FILE)) as f:
      want = json.load(f)["files"]
  except FileNotFoundError:
    return UNSEALED
  except (OSError, ValueError, KeyError, TypeError) as e:
    return f"its checksum file cannot be read ({type(e).__name__})"
  try:
    got = file_digests(folder)
  except OSError as e:
    return f"a file cannot be read ({e.strerror}: {e.filename})"
  for rel in sorted(set(want) | set(got)):
    if rel not in got:
      return f"file {rel} is missing"
    if rel not in want:
      return f"file {rel} was not part of the save"
    if got[rel][0] != want[rel][0]:
      return f"file {rel} has {got[rel][0]} bytes, {want[rel][0]} were saved (truncated?)"
    if got[rel][1] != want[rel][1]:
      return f"the bytes of file {rel} differ from those saved"
  return None

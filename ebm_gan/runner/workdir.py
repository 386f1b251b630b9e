"""Run folders' identity and locks: nothing a user made is ever overwritten or mixed.

Every folder the runner writes into — a run folder, a sweep folder, a sweep
member's folder, a vectorised group's checkpoint folder (``vmap_XXX-YYY``) —
carries a *marker*, :data:`MARKER`, a JSON file naming the program, the kind of
folder and a fingerprint of the trajectory-defining config (every field but
:data:`ebm_gan.runner.record.RESUMABLE_CHANGES`). :func:`claim` admits a folder
that is new, empty, or marked with the same identity; it refuses, as a
:class:`ConfigError`, a folder marked with another identity (naming the fields
that differ) and a non-empty folder without a marker (naming the files found).
A folder written before markers existed is adopted when its ``config.json``
has the same fingerprint (a parts folder of ``experiments.parts``: its ``parts.json``).
:func:`check_claim` makes every check of :func:`claim` — the identity, that the folder
can be created and written, that no live run holds it — and writes nothing (a dry run).

While a run lives, it holds an exclusive OS lock (``fcntl.flock``) on
:data:`LOCK` inside the folder; the lock file names the holder (pid, host,
start time), which a second run's refusal quotes. The OS drops the lock when
its process dies, however it dies, so a killed run's lock is simply taken over.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import socket
from typing import Sequence

from ebm_gan.runner import record
from ebm_gan.runner import tables
from ebm_gan.runner.registry import ConfigError

MARKER, LOCK = ".ebm_gan_run.json", ".ebm_gan.lock"
# with the temp files of a marker write that never finished (the older name, and the current)
_OURS = {MARKER, LOCK, MARKER + ".tmp", os.path.basename(tables.temp_path(MARKER))}


def expand(path: str) -> str:
  """``path`` with ``~`` expanded, made absolute and normalised."""
  return os.path.abspath(os.path.expanduser(path))


def trajectory_config(flat: dict) -> dict:
  """The fields of a flattened config that define the trajectory (not RESUMABLE_CHANGES, nor
  an ADDED_FIELDS field at the value it had before it was added)."""
  added = record.ADDED_FIELDS
  return {k: flat[k] for k in sorted(flat) if k not in record.RESUMABLE_CHANGES
          and not (k in added and flat[k] == added[k])}


def fingerprint(flat: dict) -> str:
  """A short hash of the trajectory-defining fields of a flattened config."""
  text = json.dumps(trajectory_config(flat), sort_keys=True, default=repr)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_identity(program: str, config) -> dict:
  """The marker of a run folder: program, fingerprint and the fields it covers."""
  flat = json.loads(json.dumps(trajectory_config(record.flatten_config(config)), default=repr))
  return {"kind": "run", "program": program, "fingerprint": fingerprint(flat), "config": flat}


def group_identity(program: str, kind: str, members: list[tuple[str, dict]]) -> dict:
  """The marker of a folder shared by members ``[(name, run identity)]`` (a sweep, a group)."""
  listed = [[name, ident["fingerprint"]] for name, ident in members]
  digest = hashlib.sha256(json.dumps(listed).encode()).hexdigest()[:16]
  return {"kind": kind, "program": program, "fingerprint": digest, "members": listed}


def read_marker(path: str) -> dict | None:
  """The marker of folder ``path``, or None if it has none."""
  try:
    with open(os.path.join(path, MARKER)) as f:
      return json.load(f)
  except FileNotFoundError:
    return None
  except (OSError, ValueError) as e:
    raise ConfigError(f"--workdir={path!r}: its run marker {MARKER} cannot be read ({e}); "
                      "pass another --workdir.") from None


def write_marker(path: str, identity: dict) -> None:
  """Writes ``identity`` as the marker of ``path`` (atomically; a failed write, e.g. on a
  full disk, leaves no temp file behind and names the marker)."""
  tables.write_text_atomically(os.path.join(path, MARKER),
                               json.dumps(identity, indent=1, sort_keys=True))


def _describe_difference(old: dict, new: dict) -> str:
  if old.get("program") != new["program"] or old.get("kind") != new["kind"]:
    return (f"it is a {old.get('kind', '?')} folder of the program {old.get('program')!r}, "
            f"not a {new['kind']} folder of {new['program']!r}")
  if "config" in old and "config" in new:
    a, b = old["config"], new["config"]
    diff = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    shown = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in diff[:4])
    return f"its run has another config ({shown}{', ...' if len(diff) > 4 else ''})"
  if "members" in old and "members" in new:
    was = ", ".join(n for n, _ in old["members"][:4])
    now = ", ".join(n for n, _ in new["members"][:4])
    more = lambda m: ", ..." if len(m) > 4 else ""
    return (f"it holds another sweep (members {was}{more(old['members'])}; this command's: "
            f"{now}{more(new['members'])}; same names mean another base config)")
  return "its run has another config"


def _legacy_matches(path: str, identity: dict) -> bool:
  """Whether an unmarked folder written before markers has ``identity``: a run's config.json
  its fingerprint, a parts folder's parts.json its ``parts``."""
  if identity["kind"] == "parts":
    return record.read_json_object(os.path.join(path, "parts.json")) == identity["parts"]
  if identity["kind"] != "run":
    return False
  try:
    with open(os.path.join(path, "config.json")) as f:
      flat = record._flatten(json.load(f))  # pylint: disable=protected-access
  except (OSError, ValueError):
    return False
  return flat.get("program") == identity["program"] and fingerprint(flat) == identity[
      "fingerprint"]


def check(path: str, identity: dict) -> None:
  """ConfigError unless ``path`` is new, empty, or a folder of the same run (read-only)."""
  if os.path.exists(path) and not os.path.isdir(path):
    raise ConfigError(f"--workdir={path!r} is a file, not a folder.")
  if not os.path.isdir(path):
    return
  old = read_marker(path)
  if old is not None:
    if old.get("fingerprint") != identity["fingerprint"] or old.get("kind") != identity["kind"]:
      raise ConfigError(
          f"--workdir={path!r} holds another run: {_describe_difference(old, identity)}. "
          "Continuing there would mix two runs; pass another --workdir (a new or empty folder).")
    return
  found = sorted(n + ("/" if os.path.isdir(os.path.join(path, n)) else "")
                 for n in os.listdir(path) if n not in _OURS)
  if found and not _legacy_matches(path, identity):
    shown = ", ".join(found[:6]) + (f", ... ({len(found)} entries)" if len(found) > 6 else "")
    raise ConfigError(
        f"--workdir={path!r} is not empty and is not a run folder of this launcher (it has no "
        f"{MARKER}); found: {shown}. Nothing was written there; pass a new or empty folder.")


class Lock:
  """An exclusive ``flock`` on ``<path>/.ebm_gan.lock``, held until :meth:`release`.

  Raises:
    ConfigError: another live process holds it (the message names its pid, host and start).
  """

  def __init__(self, path: str):
    self.path = os.path.join(path, LOCK)
    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # held by a live process (other errors: the folder cannot lock)
      holder = _holder(self._fd)
      os.close(self._fd)
      self._fd = None
      raise _in_use(path, holder) from None
    except OSError:
      os.close(self._fd)
      self._fd = None
      raise
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    os.ftruncate(self._fd, 0)
    os.pwrite(self._fd, json.dumps(info).encode(), 0)

  def release(self) -> None:
    """Drops the lock (the lock file stays; it names the last holder)."""
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None


def _holder(fd: int) -> str:
  """Who holds the lock whose file is open as ``fd`` (pid, host, start), as the file says."""
  try:
    info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
  except (OSError, ValueError):
    info = {}
  if not info:
    return "a process that has not yet written its name"
  return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}"


def _in_use(path: str, holder: str) -> ConfigError:
  return ConfigError(
      f"--workdir={path!r} is in use by another run ({holder}); it holds the folder's "
      "lock for as long as it lives. Wait for it to end, or pass another --workdir.")


def lock_holder(path: str) -> str | None:
  """Who holds ``path``'s lock (:class:`Lock`) if a live process does, else None; writes nothing."""
  try:
    fd = os.open(os.path.join(path, LOCK), os.O_RDONLY)
  except OSError:
    return None
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    return _holder(fd)
  finally:
    os.close(fd)  # closing drops a lock taken just now
  return None


def is_locked(path: str) -> bool:
  """Whether a live process holds ``path``'s lock (:class:`Lock`); nothing is written."""
  return lock_holder(path) is not None


def unwritable(path: str) -> str | None:
  """Why folder ``path`` could not be created or written into, or None; nothing is written.

  The nearest existing folder on the way to ``path`` (``path`` itself if it exists) must be
  a folder this process may write into.
  """
  probe = path
  while not os.path.lexists(probe) and os.path.dirname(probe) != probe:
    probe = os.path.dirname(probe)
  if not os.path.isdir(probe):
    return f"{probe} is not a folder"
  if not os.access(probe, os.W_OK | os.X_OK):
    return f"{probe} is not writable by this user"
  return None


def check_claim(path: str, identity: dict, in_use_ok: bool = False) -> None:
  """What :func:`claim` checks, with nothing written (a dry run): :func:`check`, that the
  folder can be created and written, and (unless ``in_use_ok``) that no live process holds it.

  Raises:
    ConfigError: as :func:`claim` would.
  """
  check(path, identity)
  reason = unwritable(path)
  if reason is not None:
    raise ConfigError(f"--workdir={path!r} is not a writable folder: {reason}. Nothing was "
                      "written; pass a folder you can write into.")
  holder = None if in_use_ok else lock_holder(path)
  if holder is not None:
    raise _in_use(path, holder)


def claim(path: str, identity: dict) -> Lock:
  """Checks ``path`` against ``identity``, creates it, locks it and marks it.

  The check is repeated under the lock, so two runs starting together cannot both
  pass it. Returns the held :class:`Lock`.

  Raises:
    ConfigError: another run's folder, a foreign non-empty folder, a folder in use,
      or one that cannot be written.
  """
  check_claim(path, identity)
  try:
    os.makedirs(path, exist_ok=True)
    lock = Lock(path)
  except OSError as e:
    raise ConfigError(f"--workdir={path!r} is not a writable folder: {e.strerror}.") from None
  try:
    check(path, identity)
    if read_marker(path) is None:
      write_marker(path, identity)
  except BaseException:
    lock.release()
    raise
  return lock


def claimed(folders: Sequence[str], identities: Sequence[dict]) -> contextlib.ExitStack:
  """Claims (checks, locks, marks) each folder for its identity; releases them on exit."""
  stack = contextlib.ExitStack()
  try:
    for folder, identity in zip(folders, identities):
      stack.callback(claim(folder, identity).release)
  except BaseException:
    stack.close()
    raise
  return stack


class MemberClaims:
  """The members' folders (and vectorised groups' folders) claimed while they run."""

  def __init__(self, names, dirs, identities):
    self.names, self.dirs = names, dirs
    self.identities = list(identities) if identities is not None else None

  def member(self, i: int) -> contextlib.ExitStack:
    if self.identities is None:
      return contextlib.ExitStack()
    return claimed([self.dirs[i]], [self.identities[i]])

  def group(self, group: list[int], folder: str) -> contextlib.ExitStack:
    """The members' folders, and ``folder`` for exactly these members in this order."""
    if self.identities is None:
      return contextlib.ExitStack()
    members = [(self.names[i], self.identities[i]) for i in group]
    programs = ",".join(sorted({ident["program"] for _, ident in members}))
    return claimed([self.dirs[i] for i in group] + [folder],
                   [self.identities[i] for i in group]
                   + [group_identity(programs, "group", members)])

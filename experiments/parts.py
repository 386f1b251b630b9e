"""Runs a config file's sweep in parts, side by side: one process per value of one key.

  python -m experiments.parts --config experiments/configs/toy_benchmark.py --by label \\
      --workdir runs/toy_benchmark [--jobs N] [-- RUN FLAGS ...]

Part i is ``python -m experiments.run --config CONFIG --only KEY=VALUE_i --workdir
WORKDIR/part-i RUN FLAGS``; its console goes to ``WORKDIR/logs/part-i.log`` and
``WORKDIR/parts.json`` names each part's value. At most ``--jobs`` parts run at once (default:
all). For a host with many cores and one accelerator: the parts compile at the same time and
share the device (each allocates device memory as it needs it rather than most of it at
start). Table the parts together with ``python -m experiments.report WORKDIR/part-* --out
STEM``. Running the same command again resumes every part, like any run folder.

WORKDIR is claimed like a run folder (:mod:`ebm_gan.runner.workdir`): it must be new, empty,
or the folder of these same parts (its marker names the parts' key, values and members); a
user's non-empty folder or another parts command's folder is refused, and it is locked while
the parts run. Before anything is written, ``--dry-run`` checks WORKDIR and, for every part,
everything its launcher checks at start (its members, its folder); the real command runs the
same dry run first, so a dry run that says valid means the parts start. Exit status: 2 for a
bad command (before anything starts or is written); 130 (Ctrl-C) or 143 (SIGTERM) when
stopped, which stops every running part resumably; else the largest of the parts' exit
statuses (128 + N for a part killed by signal N).
"""

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

from ebm_gan.runner import config_file
from ebm_gan.runner import sweep
from ebm_gan.runner import tables
from ebm_gan.runner import workdir as workdir_lib
from ebm_gan.runner.registry import ConfigError

PROGRAM = "experiments.parts"  # the program its folder's marker names


def _members(config_path: str):
  members = sweep.from_config(config_file.load_config_module(config_path))
  if members is None:
    raise ConfigError(f"--config={config_path!r} declares no sweep(add); there is nothing to "
                      "split into parts.")
  return members


def part_values(config_path: str, key: str) -> list[str]:
  """The distinct values of ``key`` over the config file's sweep members, in order."""
  members = _members(config_path)
  values = list(dict.fromkeys(map(str, sweep.values_of(members, key, f"--by={key!r}"))))
  if any("," in v for v in values):
    raise ConfigError(f"--by={key!r}: a value holds a comma, which --only cannot select.")
  return values


def identity(config_path: str, key: str, values: list[str]) -> dict:
  """The marker of a parts folder: each part's ``key=value`` and the sweep members it runs;
  ``parts`` is what ``parts.json`` holds (a folder written before markers is adopted by it)."""
  members, listed = _members(config_path), []
  for i, value in enumerate(values):
    mine = json.dumps(sweep.select(members, [f"{key}={value}"]), default=repr)
    listed.append((f"part-{i} ({key}={value})",
                   {"fingerprint": hashlib.sha256(mine.encode()).hexdigest()[:16]}))
  marker = workdir_lib.group_identity(PROGRAM, "parts", listed)
  return {**marker, "parts": _table(key, values)}


def _table(key: str, values: list[str]) -> dict:
  return {f"part-{i}": {key: v} for i, v in enumerate(values)}


def _run_argv(args, i: int, value: str, run_flags: list[str]) -> list[str]:
  """The launcher's arguments for part ``i``."""
  return ["--config", args.config, "--only", f"{args.by}={value}", "--workdir",
          os.path.join(args.workdir, f"part-{i}"), "--no-progress", *run_flags]


def dry_run(args, values: list[str], run_flags: list[str]) -> str:
  """Checks every part as its launcher's ``--dry-run`` does (nothing compiles or is written);
  returns what a run would do. Raises ConfigError naming the part."""
  from ebm_gan.runner import cli  # pylint: disable=g-import-not-at-top  (only here: it builds)
  members = 0
  for i, value in enumerate(values):
    try:
      plan = cli.dry_run_plan(_run_argv(args, i, value, run_flags), args.config)
    except ConfigError as e:
      raise ConfigError(f"part-{i} ({args.by}={value}): {e}") from None
    members += len(plan.get("sweep") or [None])
  return (f"dry run: {len(values)} parts ({members} members) are valid and their objects were "
          f"built; nothing compiled. The parts would write to {args.workdir}\n")


def _checked_in_a_process(args, run_flags: list[str]) -> tuple[int, str]:
  """:func:`dry_run` in a process of its own (this one never starts a device): its exit
  status and its error."""
  cmd = [sys.executable, "-m", "experiments.parts", "--config", args.config, "--by", args.by,
         "--workdir", args.workdir, "--dry-run", "--", *run_flags]
  checked = subprocess.run(cmd, capture_output=True, text=True, env=_environment())
  return checked.returncode, checked.stderr.strip() or checked.stdout.strip()


def _environment() -> dict:
  env = dict(os.environ)
  env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # several processes, one device
  return env


def _stop(running) -> None:
  """Passes a SIGTERM or Ctrl-C on to the running parts (each stops resumably) and waits."""
  for _, process, _ in running:
    process.send_signal(signal.SIGTERM)
  for _, process, log in running:
    process.wait()
    log.close()


class _Terminated(KeyboardInterrupt):
  """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt."""


def _raise_terminated(signum, frame):
  del signum, frame
  raise _Terminated()


def _exit_status(returncode: int) -> int:
  """A part's exit status as a shell reports it: 128 + N for a part killed by signal N."""
  return returncode if returncode >= 0 else 128 - returncode


def _launch(args, values: list[str], run_flags: list[str]) -> int:
  """Starts the parts, at most ``args.jobs`` at once; returns the largest exit status."""
  env = _environment()
  pending, running = list(enumerate(values)), []
  previous = signal.signal(signal.SIGTERM, _raise_terminated)
  try:
    return _supervise(args, run_flags, env, pending, running)
  except KeyboardInterrupt as e:
    print(f"stopping {len(running)} running part(s); run the same command again to resume "
          "them", file=sys.stderr, flush=True)
    _stop(running)
    return 143 if isinstance(e, _Terminated) else 130  # as the launcher's own exit statuses
  finally:
    signal.signal(signal.SIGTERM, previous)


def _supervise(args, run_flags, env, pending, running) -> int:
  """Keeps up to ``args.jobs`` parts running until all have exited; the largest status."""
  worst = 0
  while pending or running:
    while pending and len(running) < args.jobs:
      i, value = pending.pop(0)
      log = open(os.path.join(args.workdir, "logs", f"part-{i}.log"), "a")
      cmd = [sys.executable, "-m", "experiments.run", *_run_argv(args, i, value, run_flags)]
      print(f"part-{i}: {args.by}={value} (log: {log.name})", flush=True)
      running.append((i, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env),
                      log))
    time.sleep(1.0)
    for item in [r for r in running if r[1].poll() is not None]:
      running.remove(item)
      item[2].close()
      status = _exit_status(item[1].returncode)
      print(f"part-{item[0]}: exit status {status}", flush=True)
      worst = max(worst, status)
  return worst


def _parse(argv):
  parser = argparse.ArgumentParser(prog="python -m experiments.parts", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True, help="a config file with sweep(add)")
  parser.add_argument("--by", required=True, help="the member key whose values make the parts")
  parser.add_argument("--workdir", required=True, help="the folder of the parts")
  parser.add_argument("--jobs", type=int, default=0, help="parts at once (default 0: all)")
  parser.add_argument("--dry-run", action="store_true",
                      help="check the folder and every part, write nothing, start nothing")
  args, rest = parser.parse_known_args(argv)
  args.workdir = workdir_lib.expand(args.workdir)
  return args, rest[1:] if rest[:1] == ["--"] else rest


def _prepare(args):
  """The parts' values and their folder's marker, the folder checked as a claim would (nothing
  written); ConfigError for a bad command."""
  values = part_values(args.config, args.by)
  if args.jobs < 0:
    raise ConfigError(f"--jobs={args.jobs} is not allowed; give a count ≥ 1, or 0 for all "
                      f"{len(values)} parts at once.")
  args.jobs = args.jobs or len(values)
  marker = identity(args.config, args.by, values)
  workdir_lib.check_claim(args.workdir, marker)
  return values, marker


def main(argv) -> int:
  """Runs the parts (or, with ``--dry-run``, checks them); returns the exit status."""
  args, run_flags = _parse(argv)
  try:
    values, marker = _prepare(args)
    if args.dry_run:
      print(dry_run(args, values, run_flags), end="")
      return 0
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  status, error = _checked_in_a_process(args, run_flags)
  if status:
    print(error, file=sys.stderr)
    return status
  try:
    lock = workdir_lib.claim(args.workdir, marker)
  except ConfigError as e:  # e.g. another parts command took the folder in between
    print(f"error: {e}", file=sys.stderr)
    return 2
  try:
    os.makedirs(os.path.join(args.workdir, "logs"), exist_ok=True)
    tables.write_text_atomically(os.path.join(args.workdir, "parts.json"),
                                 json.dumps(_table(args.by, values), indent=1))
    return _launch(args, values, run_flags)
  finally:
    lock.release()


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))

"""Runs a config file's sweep in parts, side by side: one process per value of one key.

  python -m experiments.parts --config experiments/configs/toy_benchmark.py --by label \\
      --workdir runs/toy_benchmark [--jobs N] [-- RUN FLAGS ...]

Part i is ``python -m experiments.run --config CONFIG --only KEY=VALUE_i --workdir
WORKDIR/part-i RUN FLAGS``; its console goes to ``WORKDIR/logs/part-i.log`` and
``WORKDIR/parts.json`` names each part's value. At most ``--jobs`` parts run at once (default:
all). For a host with many cores and one accelerator: the parts compile at the same time and
share the device (each allocates device memory as it needs it rather than most of it at
start). Table the parts together with ``python -m experiments.report WORKDIR/part-* --out
STEM``. Running a part again resumes it, like any run folder. Before any part starts, a
``--dry-run`` of the whole sweep with the RUN FLAGS checks every member. Exit status: 2 for
a bad command (before anything starts); 130 (Ctrl-C) or 143 (SIGTERM) when stopped, which
stops every running part resumably; else the largest of the parts' exit statuses (128 + N
for a part killed by signal N).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

from ebm_gan.runner import config_file
from ebm_gan.runner import sweep
from ebm_gan.runner.registry import ConfigError


def part_values(config_path: str, key: str) -> list[str]:
  """The distinct values of ``key`` over the config file's sweep members, in order."""
  members = sweep.from_config(config_file.load_config_module(config_path))
  if members is None:
    raise ConfigError(f"--config={config_path!r} declares no sweep(add); there is nothing to "
                      "split into parts.")
  values = list(dict.fromkeys(map(str, sweep.values_of(members, key, f"--by={key!r}"))))
  if any("," in v for v in values):
    raise ConfigError(f"--by={key!r}: a value holds a comma, which --only cannot select.")
  return values


def _check_run_flags(args, run_flags: list[str]) -> str | None:
  """The launcher's error for the whole sweep with ``run_flags`` (a ``--dry-run``: every
  member is built, nothing compiles or is written), or None when every member is valid."""
  cmd = [sys.executable, "-m", "experiments.run", "--config", args.config, "--workdir",
         os.path.join(args.workdir, "part-0"), "--no-progress", *run_flags, "--dry-run"]
  checked = subprocess.run(cmd, capture_output=True, text=True)
  return None if checked.returncode == 0 else (checked.stderr.strip() or checked.stdout.strip())


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
  env = dict(os.environ)
  env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # several processes, one device
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
      folder = os.path.join(args.workdir, f"part-{i}")
      log = open(os.path.join(args.workdir, "logs", f"part-{i}.log"), "a")
      cmd = [sys.executable, "-m", "experiments.run", "--config", args.config,
             "--only", f"{args.by}={value}", "--workdir", folder, "--no-progress", *run_flags]
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


def main(argv) -> int:
  parser = argparse.ArgumentParser(prog="python -m experiments.parts", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True, help="a config file with sweep(add)")
  parser.add_argument("--by", required=True, help="the member key whose values make the parts")
  parser.add_argument("--workdir", required=True, help="the folder of the parts")
  parser.add_argument("--jobs", type=int, default=0, help="parts at once (default 0: all)")
  args, rest = parser.parse_known_args(argv)
  run_flags = rest[1:] if rest[:1] == ["--"] else rest
  try:
    values = part_values(args.config, args.by)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if args.jobs < 0:
    print(f"error: --jobs={args.jobs} is not allowed; give a count ≥ 1, or 0 for all "
          f"{len(values)} parts at once.", file=sys.stderr)
    return 2
  args.jobs = args.jobs or len(values)
  error = _check_run_flags(args, run_flags)
  if error:
    print(f"{error}\n(checked before starting any part: python -m experiments.run "
          f"--config {args.config} {' '.join(run_flags)} --dry-run)", file=sys.stderr)
    return 2
  os.makedirs(os.path.join(args.workdir, "logs"), exist_ok=True)
  with open(os.path.join(args.workdir, "parts.json"), "w") as f:
    json.dump({f"part-{i}": {args.by: v} for i, v in enumerate(values)}, f, indent=1)
  return _launch(args, values, run_flags)


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))

"""The command line behind ``python -m experiments.run``: configs, overrides, sweeps, resume.

Conventions follow ml_collections' ``config_flags``::

  python -m experiments.run [--config PATH] [--config.a.b=VALUE ...] [--workdir DIR]
      [--resume] [--sweep KEY=V1,V2,... ...] [--no-sweep] [--sequential] [--no-progress]

A config file defines ``get_config() -> ConfigDict`` (and optionally
``finalize(config)``, applied after the overrides, e.g. for a ``smoke`` switch —
the overrides are applied again after it, so what the user gave wins — and
``sweep(add)``, a sweep declared as code); ``config.program`` names the program
that runs it. A config file is Python and is executed, like any script. Every
user error — a broken config file, unknown key, wrong type, unknown name, bad
value, an option given twice, an unwritable workdir, a workdir of another run
or in use by a live one (see :mod:`ebm_gan.runner.workdir`), a checkpoint folder
that cannot be read — is reported as one paragraph on stderr with exit status
2, before anything compiles (for a sweep: before any member starts). ``--dry-run``
makes the same checks, the folders' included, and writes nothing: a dry run that
says valid means the run starts.

* ``--workdir DIR``: the run folder (default ``runs/<config-stem>-<timestamp>``,
  ``runs/<config-stem>-sweep-<timestamp>`` for a sweep). Running again with
  the same ``--workdir`` continues from its latest checkpoint.
* ``--resume``: insist on continuing: refuses a workdir without a checkpoint;
  without ``--workdir`` it picks the newest ``runs/<config-stem>-*`` folder.
* ``--sweep KEY=V1,V2`` / ``--sweep KEY=START:STOP[:STEP]`` (repeatable): a grid
  sweep (see :mod:`ebm_gan.runner.sweep`); a config file's ``sweep(add)`` runs unless
  ``--no-sweep``. Members differing only in seed / learning rates run as one
  vmapped program unless ``--sequential``.

Exit status: 0 finished (every member ok); 2 user error (nothing ran); 3 the run
(or a sweep member) diverged — results, last good checkpoint and summary are
kept; 4 a sweep member failed with an error (the others' results are kept; its
traceback is in its folder's error.txt); 5 a write failed (disk full or another I/O
error: one paragraph naming the folder, the free space and the last intact
checkpoint, which is kept; resumable with the same command); 6 another process of a
multi-process run was lost (this one stops at once, its checkpoints kept; resumable with the
same command on every host); 130 interrupted (Ctrl-C; resumable); 143 terminated by SIGTERM
(handled like Ctrl-C; resumable).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
from typing import Sequence

from ebm_gan.runner import console
from ebm_gan.runner import distributed
from ebm_gan.runner import help as help_lib
from ebm_gan.runner import interrupts
from ebm_gan.runner import record
from ebm_gan.runner import shared_sweep
from ebm_gan.runner import sweep as sweep_lib
from ebm_gan.runner import tables
from ebm_gan.runner import workdir as workdir_lib
from ebm_gan.runner.checkpoint import (StorageError, is_storage_failure, newest_intact_step,
                                        storage_error)
from ebm_gan.runner.programs import ebm_gan as ebm_gan_program
from ebm_gan.runner.programs import toy_games as toy_games_program
from ebm_gan.runner.config_file import check_numbers, load_config_module, resolve_config
from ebm_gan.runner.registry import ConfigError, Registry
from ebm_gan.runner.status import Status

EXIT_OK, EXIT_USER_ERROR, EXIT_DIVERGED, EXIT_FAILED, EXIT_INTERRUPTED = 0, 2, 3, 4, 130
EXIT_STORAGE = 5  # disk full / I/O error while writing the run folder
EXIT_TERMINATED = 143  # 128 + SIGTERM
EXIT_PEER_LOST = 6  # another process of a multi-process run stopped
RUNS_ROOT = "runs"

# name -> program: ``build(config)`` (the one validation pass, ConfigError on a bad field)
# and ``run(built, workdir, progress) -> summary``; optionally ``group_key(built)`` and
# ``run_group(built_list, workdirs, group_dir, progress)`` for vmapped sweep groups.
PROGRAMS = Registry("program", {"ebm_gan": ebm_gan_program, "toy_games": toy_games_program})

USAGE = ("usage: python -m experiments.run [--config PATH] [--config.KEY=VALUE ...] "
         "[--workdir DIR] [--resume] [--sweep KEY=V1,V2,... ...] [--only KEY=V1,V2,... ...] "
         "[--no-sweep] [--sequential] [--no-progress] [--dry-run] [--help]")


def parse_args(argv: Sequence[str], default_config: str):
  """Splits argv into (config path, overrides [(key, text)], options dict).

  Options: ``workdir`` (str or None), ``progress``, ``resume``, ``sweep`` (the
  ``--sweep`` axes, as text), ``only`` (the ``--only`` selections, as text), ``no_sweep``
  and ``sequential`` (bools).
  """
  path, overrides = default_config, []
  options = {"workdir": None, "progress": True, "resume": False, "sweep": [], "only": [],
             "no_sweep": False, "sequential": False, "help": False, "dry_run": False}
  flags = {"--no-progress": ("progress", False), "--resume": ("resume", True),
           "--no-sweep": ("no_sweep", True), "--sequential": ("sequential", True),
           "--help": ("help", True), "-h": ("help", True), "--dry-run": ("dry_run", True)}
  it, given = iter(argv), set()
  for arg in it:
    name, eq, value = arg.partition("=")
    needs_value = name in ("--config", "--workdir", "--sweep", "--only")
    if needs_value and not eq:
      value = next(it, None)
      if value is None:
        raise ConfigError(f"{name} needs a value. {USAGE}")
    if needs_value and not value:
      raise ConfigError(f"{name} needs a non-empty value. {USAGE}")
    if name in ("--config", "--workdir") or name.startswith("--config."):
      if name in given:
        raise ConfigError(f"{name} is given twice; give it once.")
      given.add(name)
    if name == "--config":
      path = value
    elif name == "--workdir":
      options["workdir"] = value
    elif name in ("--sweep", "--only"):
      options[name[2:]].append(value)
    elif name in flags and not eq:
      options[flags[name][0]] = flags[name][1]
    elif name.startswith("--config."):
      if not eq:
        raise ConfigError(f"{arg} needs a value: --config.KEY=VALUE.")
      overrides.append((name[len("--config."):], value))
    else:
      raise ConfigError(f"unknown argument {arg!r}. {USAGE}")
  if options["no_sweep"] and options["sweep"]:
    raise ConfigError("--no-sweep and --sweep contradict each other; give one of them.")
  return path, overrides, options


def build(path: str, config, overrides=()):
  """``(program, built, ignored)``: the program named by ``config.program`` validates ``config``.

  A field the program needs but the config lacks is reported against the config file.
  ``ignored`` maps each of ``overrides``' keys that has no effect in this config to why.
  """
  if "program" not in config:
    raise ConfigError(f"--config={path!r}: the config has no 'program' field; "
                      f"allowed programs: {', '.join(PROGRAMS.names())}.")
  check_numbers(config)
  prog = program(config.program)
  if "parallel" in config:
    distributed.settings(config.parallel)  # checked (a dry run checks, never connects)
  try:
    built = prog.build(config)
  except (AttributeError, KeyError) as e:
    field = str(e.args[0]).strip("'\"") if e.args else "?"
    raise ConfigError(f"--config={path!r}: the config lacks the field {field!r}, which the "
                      f"program {config.program!r} needs; start from a config of that program "
                      "in experiments/configs/.") from None
  ignored = getattr(prog, "ignored_keys", lambda c: {})(config)
  return prog, built, {k: ignored[k] for k, _ in overrides if k in ignored}


def _warn(ignored: dict) -> None:
  for key, why in ignored.items():
    print(f"warning: --config.{key} has no effect: {why}.", file=sys.stderr)


def program(name: str):
  """The program ``name`` (see :data:`PROGRAMS`)."""
  return PROGRAMS.get(name, key="program")


def has_checkpoint(workdir: str) -> bool:
  """Whether ``workdir/checkpoints`` holds at least one step folder."""
  folder = os.path.join(workdir, "checkpoints")
  return os.path.isdir(folder) and any(n.isdigit() for n in os.listdir(folder))


def _latest_run(root: str, prefix: str) -> str | None:
  pattern = re.compile(re.escape(prefix) + r"-\d{8}-\d{6}$")
  if not os.path.isdir(root):
    return None
  names = sorted(n for n in os.listdir(root) if pattern.match(n))
  return os.path.join(root, names[-1]) if names else None


def choose_workdir(options: dict, path: str, is_sweep: bool) -> str:
  """``--workdir``; with ``--resume`` alone the newest matching run folder; else a new one."""
  stem = os.path.splitext(os.path.basename(path))[0] + ("-sweep" if is_sweep else "")
  workdir = options["workdir"] and workdir_lib.expand(options["workdir"])
  if workdir is None and options["resume"]:
    workdir = _latest_run(RUNS_ROOT, stem)
    if workdir is None:
      raise ConfigError(f"--resume without --workdir found no {RUNS_ROOT}/{stem}-<timestamp> "
                        "folder to resume; pass --workdir.")
  if workdir is None:
    workdir = os.path.join(RUNS_ROOT, stem + "-"
                           + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
  if options["resume"]:
    found = (os.path.isdir(workdir) and any(
        has_checkpoint(os.path.join(workdir, n)) or n.startswith("vmap_")
        for n in os.listdir(workdir))) if is_sweep else has_checkpoint(workdir)
    if not found:
      raise ConfigError(f"--resume: {workdir!r} holds no checkpoint to resume from; drop "
                        "--resume to start a new run there.")
  return workdir


def _member_text(member) -> str:
  shown = lambda v: repr(v) if len(repr(v)) <= 60 else f"{repr(v)[:40]}... ({len(repr(v))} chars)"
  return " ".join(f"{k}={shown(v)}" for k, v in member) or "(no overrides)"


def _start_processes(config, options) -> None:
  """Joins the other processes of a distributed run (not for a dry run), before any device
  query, and checks that every process was started with the same config."""
  if "parallel" in config and not options["dry_run"]:
    distributed.initialize(config.parallel)
    distributed.check_agreement(record.flatten_config(config))


def _prepare(argv, default_config):
  """Everything that can be refused before a run starts: returns a plan of what to run.

  The run (or sweep) folder is claimed here — checked against the run's identity,
  locked and marked — so the plan holds the lock, to be released when the run ends.
  """
  path, overrides, options = parse_args(argv, default_config)
  module = load_config_module(path)
  if options["help"]:
    return {"help": _help(path, resolve_config(path, overrides, module), default_config)}
  grid = sweep_lib.expand_grid(options["sweep"]) if options["sweep"] else None
  members = sweep_lib.select(sweep_lib.combine(
      None if options["no_sweep"] else sweep_lib.from_config(module), grid), options["only"])
  if members is None:
    return _prepare_run(path, overrides, module, options)
  swept = sorted({k for m in members for k, _ in m} & {k for k, _ in overrides})
  if swept:
    raise ConfigError(f"--config.{swept[0]} is given, but the sweep sets {swept[0]!r} too; "
                      "give its values in the sweep only.")
  # A sweep never starts jax.distributed: on several processes its members are shared out by
  # number (shared_sweep); on one, there is nothing to join.
  base = resolve_config(path, overrides, module)
  share = distributed.sweep_share(base.parallel) if "parallel" in base else None
  if share is not None:
    distributed.share(*share)
  programs, built, identities, ignored, seen = [], [], [], {}, {}
  for i, member in enumerate(members):
    try:
      config = resolve_config(path, list(overrides) + list(member), module)
      prog, b, unused = build(path, config, list(overrides) + list(member))
      programs.append(prog)
      built.append(b)
      ignored.update(unused)
      identities.append(workdir_lib.run_identity(config.program, b.config))
    except ConfigError as e:
      raise ConfigError(f"sweep member {i} ({_member_text(member)}): {e}") from None
    full = json.dumps(record.flatten_config(b.config), sort_keys=True, default=repr)
    if full in seen:
      raise ConfigError(f"sweep members {seen[full]} ({_member_text(members[seen[full]])}) and "
                        f"{i} ({_member_text(member)}) are the same run: their configs are "
                        "equal. Each member must differ.")
    seen[full] = i
  workdir = workdir_lib.expand(choose_workdir(options, path, is_sweep=True))
  _warn(ignored)
  plan = {"sweep": members, "programs": programs, "built": built, "workdir": workdir,
          "options": options, "lock": None, "identities": identities}
  names = [sweep_lib.member_name(i, m) for i, m in enumerate(members)]
  plan["lock"] = shared_sweep.claim_sweep(workdir, names, identities, share, options["dry_run"])
  return plan


def _help(path: str, config, default_config: str) -> str:
  """``--help``: the flags, the fields of ``config`` and the config files beside the default."""
  prog = PROGRAMS.get(config.program, key="program")
  return help_lib.render(
      USAGE, path, config, {"program": PROGRAMS, **getattr(prog, "CHOICES", {})},
      descriptions=getattr(prog, "DESCRIPTIONS", {}),
      files=help_lib.config_files(os.path.dirname(os.path.abspath(default_config))))


def _prepare_run(path: str, overrides, module, options) -> dict:
  """The plan of a single run: built, its folder claimed (or, for a dry run, checked with
  the claim's and the resume's checks, nothing written)."""
  config = resolve_config(path, overrides, module)
  _start_processes(config, options)
  prog, built, ignored = build(path, config, overrides)
  workdir = workdir_lib.expand(choose_workdir(options, path, is_sweep=False))
  identity, lock = workdir_lib.run_identity(config.program, built.config), None
  if options["dry_run"]:
    workdir_lib.check_claim(workdir, identity)
    if has_checkpoint(workdir):
      record.check_resumable(workdir, built.config)
  elif distributed.is_writer():
    lock = workdir_lib.claim(workdir, identity)
  _warn(ignored)
  return {"sweep": None, "program": prog, "built": built, "workdir": workdir,
          "options": options, "lock": lock}


def dry_run_plan(argv: Sequence[str], default_config: str) -> dict:
  """The plan of ``argv`` with ``--dry-run``: every check a run makes before it starts
  (config, members, folders), nothing compiled or written. Raises ConfigError."""
  return _prepare([*argv, "--dry-run"], default_config)


Terminated = interrupts.Terminated


def main(argv: Sequence[str], default_config: str, early_signals=()) -> int:
  """Runs the launcher; returns the process exit status (see the module docstring).

  SIGTERM is handled like Ctrl-C (the run stops where it is, resumable), with exit 143;
  neither interrupts XLA or orbax (``interrupts``). ``early_signals``: SIGINT/SIGTERM
  caught by the entry point before the launcher was imported.
  """
  previous = interrupts.install(early_signals)
  try:
    status = _main(argv, default_config)
  finally:
    interrupts.restore(previous)
  if status == EXIT_PEER_LOST:
    distributed.leave(status)  # never returns: no shutdown barrier the lost process cannot reach
  return status


def _main(argv: Sequence[str], default_config: str) -> int:
  try:
    interrupts.deliver()  # a signal that arrived while the launcher was being imported
    plan = _prepare(argv, default_config)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return EXIT_USER_ERROR
  except (StorageError, OSError) as e:  # claiming the folder, e.g. on a full disk
    if not (isinstance(e, StorageError) or is_storage_failure(e)):
      raise
    return _storage_failed(e, None)
  except KeyboardInterrupt as e:
    terminated = isinstance(e, Terminated)
    print(f"{'terminated (SIGTERM)' if terminated else 'interrupted'} before the run started; "
          "nothing was trained.", file=sys.stderr)
    return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
  if "help" in plan or plan["options"]["dry_run"]:
    print(plan.get("help") or console.dry_run(plan), end="")
    return EXIT_OK
  workdir = plan["workdir"]
  try:
    return _execute(plan)
  except ConfigError as e:  # found while starting the run, e.g. a corrupt checkpoint folder
    print(f"error: {e}", file=sys.stderr)
    return EXIT_USER_ERROR
  except (StorageError, OSError) as e:
    if not (isinstance(e, StorageError) or is_storage_failure(e)):
      raise
    return _storage_failed(e, workdir)
  except distributed.PeerLost as e:
    print(f"error: {e} Run the same command on every host with --workdir={workdir} to resume "
          "from the latest checkpoint.", file=sys.stderr)
    return EXIT_PEER_LOST
  except KeyboardInterrupt as e:
    what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
    step = getattr(e, "resume_step", None)
    where = "the latest checkpoint" if step is None else (
        f"step {step}" if step else "step 0 (no step had finished)")
    print(f"{what}; run the same command with --workdir={workdir} to resume from "
          f"{where}.", file=sys.stderr)
    return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED
  finally:
    if plan["lock"] is not None:
      plan["lock"].release()


def _storage_failed(e: OSError, workdir: str | None) -> int:
  """One paragraph for a failed write (which file, the free space, the last intact
  checkpoint); returns exit status 5. ``workdir``: None before the run folder was claimed."""
  if not isinstance(e, StorageError):
    folder = workdir or os.path.dirname(os.path.abspath(e.filename or "."))
    e = storage_error(f"write {e.filename or 'a file'}", folder,
                      newest_intact_step(workdir) if workdir else None, e)
  print(f"error: {e}", file=sys.stderr)
  return EXIT_STORAGE


def _execute(plan) -> int:
  """Runs a prepared plan; returns the exit status."""
  workdir, options = plan["workdir"], plan["options"]
  if plan["sweep"] is None:
    print(f"run folder: {workdir}", flush=True)
    with distributed.peers_watched():
      summary = plan["program"].run(plan["built"], workdir, progress=options["progress"])
    print(tables.summary_table(record.flat_scalars(summary)))
    print(f"run folder: {workdir}")
    status = summary.get("status")
  else:
    members = plan["sweep"]
    print(f"sweep: {sweep_lib.describe(members)} -> {workdir}")
    rows = sweep_lib.run_members(members, plan["programs"], plan["built"], workdir,
                                 progress=options["progress"],
                                 vectorise=not options["sequential"],
                                 identities=plan["identities"])
    running = [r["member"] for r in rows if r["status"] == Status.RUNNING]
    if running:
      print(f"members {', '.join(running)} run in other processes; the last to finish writes "
            "the sweep table.")
    print(console.sweep_table(rows, members))
    print(f"sweep folder: {workdir} (every column in sweep.csv and sweep.md; one run folder "
          "per member)")
    status = sweep_lib.exit_status(rows)
  return {Status.DIVERGED: EXIT_DIVERGED, Status.FAILED: EXIT_FAILED}.get(status, EXIT_OK)

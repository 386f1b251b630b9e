"""The command line behind ``python -m experiments.run``: config files, overrides, programs.

Conventions follow ml_collections' ``config_flags``::

  python -m experiments.run [--config PATH] [--config.a.b=VALUE ...] [--workdir DIR]

A config file defines ``get_config() -> ConfigDict`` (and optionally
``finalize(config)``, applied after the overrides, e.g. for a ``smoke`` switch);
``config.program`` names the program that runs it. Every user error — unknown
key, wrong type, unknown name, bad value — is reported as one paragraph on
stderr with exit status 2, before anything compiles.

Exit status: 0 finished, 2 user error, 3 the run diverged (results are kept).
"""

from __future__ import annotations

import ast
import datetime
import difflib
import importlib
import importlib.util
import os
import sys
from typing import Sequence

import ml_collections

from ebm_gan.registry import ConfigError, Registry

EXIT_OK, EXIT_USER_ERROR, EXIT_DIVERGED = 0, 2, 3

PROGRAMS = Registry("program")
# name -> module with ``validate(config)`` and ``run(config, workdir, progress) -> summary``.
PROGRAMS.register("ebm_gan", "ebm_gan.experiment")
PROGRAMS.register("toy_games", "ebm_gan.toy_experiment")

USAGE = ("usage: python -m experiments.run [--config PATH] [--config.KEY=VALUE ...] "
         "[--workdir DIR] [--no-progress]")


def load_config_module(path: str):
  """Imports a config file by path; ConfigError if missing or without get_config()."""
  if not os.path.isfile(path):
    raise ConfigError(f"--config={path!r}: no such config file.")
  spec = importlib.util.spec_from_file_location(
      "ebm_gan_config_" + os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # a broken config file is a user error with a reason
    raise ConfigError(f"--config={path!r} could not be loaded: {type(e).__name__}: {e}") from e
  if not hasattr(module, "get_config"):
    raise ConfigError(f"--config={path!r} defines no get_config() function.")
  return module


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def parse_value(text: str, kind: type, key: str):
  """Converts the command-line string ``text`` to the type of the field ``key``."""
  try:
    if kind is bool:
      if text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
      raise ValueError
    if kind is int:
      return int(text)
    if kind is float:
      return float(text)
    if kind is str:
      return text
    if kind in (tuple, list):
      value = ast.literal_eval(text)
      value = (value,) if isinstance(value, (int, float, str)) else value
      if not isinstance(value, (tuple, list)):
        raise ValueError
      return kind(value)
    try:
      return ast.literal_eval(text)
    except (ValueError, SyntaxError):
      return text
  except (ValueError, SyntaxError):
    want = {bool: "true or false", int: "an integer", float: "a number",
            tuple: "a tuple such as (256, 256)", list: "a list such as [1, 2]"}
    raise ConfigError(f"--config.{key}={text!r} has the wrong type; expected "
                      f"{want.get(kind, kind.__name__)}.") from None


def apply_override(config: ml_collections.ConfigDict, key: str, text: str) -> None:
  """Sets ``config.<key>`` (dotted) from ``text``; ConfigError for unknown keys/types."""
  node, parts = config, key.split(".")
  for i, part in enumerate(parts):
    known = list(node.keys())
    if part not in known:
      where = ".".join(parts[:i]) or "the config"
      close = difflib.get_close_matches(part, known, n=1)
      hint = f" Did you mean {'.'.join(parts[:i] + close)!r}?" if close else ""
      raise ConfigError(f"--config.{key}: {'.'.join(parts[:i + 1])!r} is not a config key.{hint}"
                        f" Keys of {where}: {', '.join(sorted(known))}.")
    if i < len(parts) - 1:
      node = node[part]
      if not isinstance(node, ml_collections.ConfigDict):
        raise ConfigError(f"--config.{key}: {'.'.join(parts[:i + 1])!r} is a value, not a group.")
  last = parts[-1]
  if isinstance(node[last], ml_collections.ConfigDict):
    raise ConfigError(f"--config.{key} is a group of settings ({', '.join(node[last].keys())}); "
                      "set its fields one by one.")
  value = parse_value(text, node.get_type(last), key)
  try:
    node[last] = value
  except TypeError as e:
    raise ConfigError(f"--config.{key}={text!r} has the wrong type: {e}") from None


def parse_args(argv: Sequence[str], default_config: str):
  """Splits argv into (config path, overrides [(key, text)], options dict)."""
  path, overrides = default_config, []
  options = {"workdir": None, "progress": True}
  it = iter(argv)
  for arg in it:
    name, eq, value = arg.partition("=")
    needs_value = name in ("--config", "--workdir")
    if needs_value and not eq:
      value = next(it, None)
      if value is None:
        raise ConfigError(f"{name} needs a value. {USAGE}")
    if name == "--config":
      path = value
    elif name == "--workdir":
      options["workdir"] = value
    elif name == "--no-progress" and not eq:
      options["progress"] = False
    elif name.startswith("--config."):
      if not eq:
        raise ConfigError(f"{arg} needs a value: --config.KEY=VALUE.")
      overrides.append((name[len("--config."):], value))
    else:
      raise ConfigError(f"unknown argument {arg!r}. {USAGE}")
  return path, overrides, options


def resolve_config(path: str, overrides):
  """Loads ``path``, applies overrides, then the file's ``finalize`` (if any)."""
  module = load_config_module(path)
  config = module.get_config()
  config.lock()
  for key, text in overrides:
    apply_override(config, key, text)
  if hasattr(module, "finalize"):
    config = module.finalize(config)
  if "program" not in config:
    raise ConfigError(f"--config={path!r}: the config has no 'program' field; "
                      f"allowed programs: {', '.join(PROGRAMS.names())}.")
  return config


def program(name: str):
  """The module of a program: ``validate(config)`` and ``run(config, workdir, progress)``."""
  return importlib.import_module(PROGRAMS.get(name, key="program"))


def check_workdir(workdir: str) -> str:
  """Creates ``workdir`` (and parents) or raises ConfigError if it cannot be written."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, ".write_test")
    with open(probe, "w"):
      pass
    os.remove(probe)
  except OSError as e:
    raise ConfigError(f"--workdir={workdir!r} is not a writable folder: {e.strerror}.") from None
  return workdir


def main(argv: Sequence[str], default_config: str) -> int:
  """Runs the launcher; returns the process exit status."""
  try:
    path, overrides, options = parse_args(argv, default_config)
    config = resolve_config(path, overrides)
    prog = program(config.program)
    prog.validate(config)
    workdir = options["workdir"] or os.path.join(
        "runs", os.path.splitext(os.path.basename(path))[0] + "-"
        + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    check_workdir(workdir)
    summary = prog.run(config, workdir, progress=options["progress"])
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return EXIT_USER_ERROR
  from ebm_gan.experiment import format_table
  print(format_table({k: v for k, v in summary.items() if not isinstance(v, (list, dict))}))
  print(f"run folder: {workdir}")
  return EXIT_DIVERGED if summary.get("status") == "diverged" else EXIT_OK

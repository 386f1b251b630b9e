"""A config file and the command line's overrides → one resolved ``ConfigDict``.

A config file is Python, executed like any script: it defines ``get_config()``
(no arguments, returns an ``ml_collections.ConfigDict``) and optionally
``finalize(config)`` (returns the config). Every way such a file can go wrong —
it cannot be imported, it is not Python, it calls ``sys.exit``, a function
raises, takes the wrong arguments, returns something else or adds a field —
is a :class:`ConfigError` naming the file and the problem, never a traceback.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import inspect
import math
import os
import re

import ml_collections

from ebm_gan.runner import record
from ebm_gan.runner.registry import ConfigError


def load_config_module(path: str):
  """Imports a config file by path; ConfigError if missing or without get_config()."""
  if not os.path.isfile(path):
    raise ConfigError(f"--config={path!r}: no such config file.")
  spec = importlib.util.spec_from_file_location(
      "ebm_gan_config_" + os.path.splitext(os.path.basename(path))[0], path)
  if spec is None or not path.endswith(".py"):
    raise ConfigError(f"--config={path!r} is not a Python file; a config is a .py file that "
                      "defines get_config().")
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except (Exception, SystemExit) as e:  # a broken config file is a user error with a reason
    raise ConfigError(f"--config={path!r} could not be loaded: {_raised(e)}") from None
  if not callable(getattr(module, "get_config", None)):
    raise ConfigError(f"--config={path!r} defines no get_config() function.")
  return module


def _raised(e: BaseException) -> str:
  """``'TypeError: message'``; for sys.exit() in a config file, says so."""
  if isinstance(e, SystemExit):
    return f"it called sys.exit({e.code!r}); a config file must not exit."
  locked = re.search(r'Key "([^"]+)" does not exist and cannot be added', str(e.args[0]) if
                    e.args else "")
  if locked:
    return (f"it sets {locked.group(1)!r}, which is not a field of the config (the config is "
            "locked after get_config(): later steps may change fields, not add them).")
  return " ".join(f"{type(e).__name__}: {e}".split())[:400]


def _call(path: str, name: str, fn, *args):
  """Calls the config file's function ``name``; ConfigError naming the file if it fails."""
  required = [p.name for p in inspect.signature(fn).parameters.values()
              if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
  if len(required) != len(args):
    want = "no arguments" if not args else "one argument, the config"
    raise ConfigError(f"--config={path!r}: {name}() must take {want}; it takes "
                      f"({', '.join(required)}).")
  try:
    return fn(*args)
  except ConfigError:
    raise
  except (Exception, SystemExit) as e:  # pylint: disable=broad-except
    raise ConfigError(f"--config={path!r}: {name}() failed: {_raised(e)}") from None


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def parse_value(text: str, kind: type, key: str):
  """Converts the command-line string ``text`` to the type of the field ``key``."""
  try:
    if kind is bool:
      if text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
      raise ValueError
    if kind is int:
      return _parse_int(text, key)
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
  except ConfigError:
    raise
  except (ValueError, SyntaxError):
    want = {bool: "true or false", int: "an integer", float: "a number",
            tuple: "a tuple such as (256, 256)", list: "a list such as [1, 2]"}
    raise ConfigError(f"--config.{key}={text!r} has the wrong type; expected "
                      f"{want.get(kind, kind.__name__)}.") from None


# What an integer field can hold at most: the seed [0, 2**63) (jax.random.PRNGKey refuses
# more); any other a 64-bit integer (one with a narrower range, such as steps, says so when
# it is checked).
INT_RANGES = {"seed": "[0, 2**63)"}
_INTEGER = re.compile(r"\s*[+-]?\d[\d_]*\s*")


def _out_of_range(key: str, shown: str, flag: str = "") -> ConfigError:
  return ConfigError(f"{flag}{key}={shown} is out of range; expected an integer in "
                     f"{INT_RANGES.get(key, '(-2**63, 2**63)')}.")


def _parse_int(text: str, key: str) -> int:
  """``int(text)``; an integer too long for Python to read (over 4300 digits) is out of range."""
  try:
    return int(text)
  except ValueError:
    if not _INTEGER.fullmatch(text):
      raise
  digits = sum(c.isdigit() for c in text)
  raise _out_of_range(key, f"{text.strip()[:12]}... ({digits} digits)", "--config.") from None


def _field(config: ml_collections.ConfigDict, key: str):
  """The group holding the dotted ``key`` and its last part; ConfigError for unknown keys."""
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
  return node, last


def apply_override(config: ml_collections.ConfigDict, key: str, text) -> None:
  """Sets ``config.<key>`` (dotted) from command-line ``text`` or a Python value (from a sweep).

  Raises:
    ConfigError: unknown key, a group instead of a value, or a value of the wrong type.
  """
  node, last = _field(config, key)
  kind = node.get_type(last)
  if isinstance(text, str) and text in ("None", "null") and kind is not str:
    value = None  # e.g. optimizer.critic_lr=None: 'same as lr'
  else:
    value = parse_value(text, kind, key) if isinstance(text, str) else text
  if isinstance(value, list) and kind is tuple:
    value = tuple(value)
  try:
    node[last] = value
  except TypeError as e:
    raise ConfigError(f"--config.{key}={text!r} has the wrong type: {e}") from None


def resolve_config(path: str, overrides, module=None):
  """Loads ``path`` (or uses its loaded ``module``), applies overrides, then ``finalize``.

  The overrides are applied again after ``finalize``, so that a value the user gave
  wins over what ``finalize`` changes (e.g. the smoke switch's widths).
  """
  module = load_config_module(path) if module is None else module
  config = _call(path, "get_config", module.get_config)
  _check_config_dict(path, "get_config()", config)
  config.lock()
  for key, text in overrides:
    apply_override(config, key, text)
  if hasattr(module, "finalize"):
    config = _call(path, "finalize", module.finalize, config)
    _check_config_dict(path, "finalize(config)", config)
    for key, text in overrides:
      apply_override(config, key, text)
  return config


def _check_config_dict(path: str, what: str, config) -> None:
  if isinstance(config, ml_collections.FrozenConfigDict):
    raise ConfigError(f"--config={path!r}: {what} returned a FrozenConfigDict, which "
                      "overrides cannot set; return an ml_collections.ConfigDict.")
  if not isinstance(config, ml_collections.ConfigDict):
    hint = " (did it forget 'return c'?)" if config is None and "finalize" in what else ""
    raise ConfigError(f"--config={path!r}: {what} returned {type(config).__name__}, "
                      f"not an ml_collections.ConfigDict{hint}.")


def _large_ints(node, prefix=""):
  """``(key, value)`` of every integer of ``node`` (a ConfigDict) beyond a 64-bit integer."""
  for k, v in node.items():
    if isinstance(v, ml_collections.ConfigDict):
      yield from _large_ints(v, f"{prefix}{k}.")
    elif isinstance(v, int) and not isinstance(v, bool) and not -2**63 < v < 2**63:
      yield prefix + k, v


def _shown(value: int) -> str:
  """``value`` as text; for one of more than 30 digits, its first digits and its size (Python
  refuses to print one of more than 4300)."""
  if abs(value) < 10**30:
    return str(value)
  digits = int(abs(value).bit_length() * math.log10(2))  # the count, or one less
  digits += abs(value) >= 10**digits
  head = str(abs(value) // 10**(digits - 6))
  return f"{'-' if value < 0 else ''}{head}... ({digits} digits)"


def check_numbers(config) -> None:
  """ConfigError for a NaN or infinite number anywhere in ``config``, or an integer (the seed
  among them) out of range."""
  for key, value in _large_ints(config):
    raise _out_of_range(key, _shown(value))
  for key, value in record.flatten_config(config).items():
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
      if isinstance(v, float) and not math.isfinite(v):
        raise ConfigError(f"{key}={value!r} is not allowed; expected finite numbers.")

"""``python -m experiments.run --help``: usage, the flags, and the config's fields.

The fields are those of the config that ``--config`` names, after the
command line's overrides (and the file's ``finalize``), each with its current
value, its type, what it does (the program's ``DESCRIPTIONS``) and, for a named
choice, the names allowed (from the program's ``CHOICES``: config key -> a registry
or a tuple of names). Then the config files beside the default one, each with the
first line of its docstring.
"""

from __future__ import annotations

import ast
import os

import ml_collections

# (flag, what it does), in the order of the usage line.
FLAGS = (
    ("--config PATH", "the config file (default: experiments/configs/default.py)"),
    ("--config.KEY=VALUE", "override a field (dotted KEY, as listed below); repeatable"),
    ("--workdir DIR", "the run folder (default runs/<config-stem>-<timestamp>); an existing "
                      "one is resumed from its latest checkpoint"),
    ("--resume", "insist on continuing a run (the newest runs/<config-stem>-* without --workdir)"),
    ("--sweep KEY=V1,V2,...", "a sweep axis (KEY=A:B[:S] is range(A, B, S)); repeatable: a grid"),
    ("--only KEY=V1,V2,...", "run only the sweep members whose KEY is one of the values "
                             "(repeatable: each must match), e.g. one method of a benchmark"),
    ("--no-sweep", "ignore the config file's sweep(add)"),
    ("--sequential", "run sweep members one by one instead of as vmapped groups"),
    ("--no-progress", "no progress bars or phase lines"),
    ("--dry-run", "check the config (and every sweep member) and build everything, then exit 0 "
                  "before compiling or writing anything"),
    ("-h, --help", "show this help (with the fields of the --config given) and exit 0"),
)
EXIT_CODES = ("exit status: 0 ok; 2 user error (nothing ran); 3 a run diverged; "
              "4 a sweep member failed; 5 a write failed, e.g. disk full (resumable); "
              "6 another process of the run stopped (resumable); "
              "130 interrupted, 143 terminated (resumable)")


def fields(config: ml_collections.ConfigDict, prefix: str = ""):
  """``(dotted key, value, type name)`` of every field of ``config``, depth first."""
  out = []
  for key in config.keys():
    value = config[key]
    if isinstance(value, ml_collections.ConfigDict):
      out.extend(fields(value, f"{prefix}{key}."))
      continue
    kind = config.get_type(key)
    out.append((prefix + key, value, getattr(kind, "__name__", str(kind))))
  return out


def _choices(key: str, choices, kind: str) -> str:
  """The allowed names of ``key`` ('' when it is not a named choice)."""
  names = choices.get(key)
  if names is None:
    return ""
  names = names.names() if hasattr(names, "names") else list(names)
  return ("entries from: " if kind in ("tuple", "list") else "one of: ") + " | ".join(names)


def _wrap(head: str, text: str, width: int, indent: int | None = None) -> list[str]:
  """``head`` then ``text`` cut at spaces into lines of about ``width`` characters.

  Continuation lines are indented by ``indent`` (default: the length of ``head``); a
  ``head`` longer than ``indent`` stands on its own line.
  """
  indent = len(head) if indent is None else indent
  lines, cur = [], head
  if len(head) > indent and text:
    lines, cur = [head.rstrip()], " " * indent
  fresh = True  # nothing of `text` on the current line yet
  for word in text.split():
    if not fresh and len(cur) + 1 + len(word) > width:
      lines.append(cur.rstrip())
      cur, fresh = " " * indent, True
    cur = cur + word if fresh else f"{cur} {word}"
    fresh = False
  return lines + [cur.rstrip()]


def config_files(folder: str) -> list[tuple[str, str]]:
  """``(path, first line of its docstring)`` of every config file in ``folder``.

  The files are parsed, not executed; one that does not parse says so in its line.
  """
  out = []
  for name in sorted(os.listdir(folder)):
    if not name.endswith(".py") or name.startswith("_"):
      continue
    path = os.path.join(folder, name)
    try:
      with open(path, encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
      line = doc.strip().splitlines()[0] if doc.strip() else "(no docstring)"
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError) as e:
      line = f"(unreadable: {type(e).__name__})"
    out.append((path, line))
  return out


def _shown(path: str) -> str:
  """``path`` relative to the working folder when it lies under it."""
  rel = os.path.relpath(path)
  return path if rel.startswith("..") else rel


def render(usage: str, config_path: str, config: ml_collections.ConfigDict,
           choices=None, width: int = 100, descriptions=None, files=()) -> str:
  """The help text: usage, flags, exit codes, the fields of ``config``, the config files.

  Each field is one line (key, value, type), then, indented under it, what it does and
  the names it allows.

  Args:
    usage: the one-line usage string.
    config_path: the config file the fields come from (shown in the heading).
    config: the resolved config (overrides applied).
    choices: config key -> allowed names (a Registry or a sequence), or None.
    width: wrap lines at about this many characters.
    descriptions: config key -> what the field does, one line (or None).
    files: ``(path, first docstring line)`` of the config files to list (``config_files``).
  """
  choices, descriptions = choices or {}, descriptions or {}
  out = _wrap("usage: ", usage.removeprefix("usage: "), width) + ["", "flags:"]
  flag_w = max(len(f) for f, _ in FLAGS)
  for flag, text in FLAGS:
    out += _wrap(f"  {flag.ljust(flag_w)}  ", text, width)
  out += [""] + _wrap("", EXIT_CODES, width) + ["",
          f"fields of {_shown(config_path)} (program {config.get('program', '?')!r}); "
          "set any with --config.KEY=VALUE:"]
  rows = [(k, repr(v), t, _choices(k, choices, t)) for k, v, t in fields(config)]
  key_w = max(len(r[0]) for r in rows)
  val_w = min(max(len(r[1]) for r in rows), 28)
  for key, value, kind, allowed in rows:
    out.append(f"  {key.ljust(key_w)}  {value.ljust(val_w)}  {kind}".rstrip())
    text = "; ".join(s for s in (descriptions.get(key, ""), allowed) if s)
    if text:  # what it does and the names allowed, indented under the field
      out += _wrap("      ", text, width)
  if files:
    out += ["", "config files (--config PATH):"]
    path_w = max(len(_shown(p)) for p, _ in files)
    for path, line in files:
      out += _wrap(f"  {_shown(path).ljust(path_w)}  ", line, width)
  return "\n".join(out) + "\n"

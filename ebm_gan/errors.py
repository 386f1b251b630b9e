"""The errors the library raises for arguments it cannot use, and two checks that raise them.

Every refusal is an :class:`InvalidArgumentError` (a ``ValueError``) whose
message names the argument, the value given and what is allowed, e.g.
``k=0 is not allowed; expected a positive integer.``. Code that builds library
objects from user input (the experiment runner, ``ebm_gan.runner``) catches it
and reports it against its own setting's name.
"""

from __future__ import annotations

from typing import Mapping, TypeVar

T = TypeVar("T")


class InvalidArgumentError(ValueError):
  """An argument the library refuses: an unknown name, a bad shape, a value out of range."""


def lookup(table: Mapping[str, T], name, argument: str, what: str) -> T:
  """``table[name]``, or InvalidArgumentError naming ``argument``, ``name`` and the choices.

  >>> lookup({'a': 1}, 'b', 'scheme', 'update scheme')
  Traceback (most recent call last):
  ...
  ebm_gan.errors.InvalidArgumentError: scheme='b' is not a known update scheme; allowed: a.
  """
  if not isinstance(name, str) or name not in table:
    raise InvalidArgumentError(f"{argument}={name!r} is not a known {what}; allowed: "
                               f"{', '.join(sorted(table))}.")
  return table[name]


def check_positive(value, argument: str, *, integer: bool = False):
  """``value`` if it is a positive number (integer if asked), else InvalidArgumentError."""
  kind = int if integer else (int, float)
  if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
    what = "a positive integer" if integer else "a positive number"
    raise InvalidArgumentError(f"{argument}={value!r} is not allowed; expected {what}.")
  return value

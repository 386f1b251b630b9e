"""Named choices of the configs, and the one error type the runner reports to the user.

A :class:`Registry` maps a config name to what it stands for (a factory, a
program) and refuses unknown names with a :class:`ConfigError` naming the
config key, the value given and every valid choice. Library refusals
(:class:`ebm_gan.errors.InvalidArgumentError`) raised while a config is turned
into library objects are re-raised as ConfigError against the config key they
came from (:func:`reported_as`), so every user mistake surfaces before
anything is traced or compiled, as one paragraph and exit status 2.
"""

from __future__ import annotations

import contextlib
import math
import re
from typing import Generic, Iterator, Mapping, TypeVar

from ebm_gan import errors
from ebm_gan.errors import InvalidArgumentError

T = TypeVar("T")


class ConfigError(ValueError):
  """A user error in a configuration or the command line, found before anything runs.

  The launcher prints its message (one paragraph, no traceback) and exits with status 2.
  """


class Registry(Generic[T]):
  """A name → object table that refuses unknown names with a helpful error.

  Example::

    LOSSES = Registry('loss')

    @LOSSES.register('hinge')
    def hinge(...): ...

    LOSSES.get('hinge', key='config.loss')
  """

  def __init__(self, kind: str, entries: Mapping[str, T] | None = None):
    self.kind = kind
    self._entries: dict[str, T] = dict(entries or {})

  def register(self, name: str, obj: T | None = None):
    """Registers ``obj`` under ``name``; usable as a decorator when obj is None."""
    def add(o: T) -> T:
      if name in self._entries:
        raise ValueError(f"{self.kind} {name!r} is registered twice")
      self._entries[name] = o
      return o
    return add if obj is None else add(obj)

  def get(self, name: str, key: str) -> T:
    """The entry for ``name``; a ConfigError naming ``key`` and every valid name
    (:func:`ebm_gan.errors.lookup`, the library's one name look-up)."""
    with reported_as(None):
      return errors.lookup(self._entries, name, key, self.kind)

  def names(self) -> list[str]:
    return sorted(self._entries)

  def __contains__(self, name: object) -> bool:
    return name in self._entries

  def __iter__(self) -> Iterator[str]:
    return iter(sorted(self._entries))


def check_positive(value, key: str, *, integer: bool = False):
  """``value`` if it is a positive finite (integer) number, else ConfigError naming ``key``."""
  with reported_as(None):
    errors.check_positive(value, key, integer=integer)
  if not math.isfinite(value):
    raise ConfigError(f"{key}={value!r} is not allowed; expected a finite positive number.")
  return value


def check_non_negative(value, key: str) -> float:
  """``value`` as a float if it is a finite number >= 0, else ConfigError naming ``key``."""
  if (isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0
      or not math.isfinite(value)):
    raise ConfigError(f"{key}={value!r} is not allowed; expected a finite number >= 0.")
  return float(value)


def check_count(value, key: str, zero_means: str | None = None) -> int:
  """``value`` if it is an integer >= 0, else ConfigError naming ``key`` (and what 0 means)."""
  if isinstance(value, bool) or not isinstance(value, int) or value < 0:
    meaning = f" (0: {zero_means})" if zero_means else ""
    raise ConfigError(f"{key}={value!r} is not allowed; expected an integer >= 0{meaning}.")
  return value


_NAMED_VALUE = re.compile(r"^[A-Za-z_][\w.\[\]]*=")


@contextlib.contextmanager
def reported_as(key: str | None):
  """Re-raises a library refusal inside the block as a ConfigError against config ``key``.

  A library message that starts with ``arg=value`` becomes ``key.arg=value …``
  (e.g. ``entropy.knn`` + ``k=0 is not allowed`` → ``entropy.knn.k=0 is not
  allowed``); any other becomes ``key: message``; with ``key`` None the message
  is kept as it is (it already names the config key).
  """
  try:
    yield
  except InvalidArgumentError as e:
    msg = str(e)
    if key is not None:
      msg = f"{key}.{msg}" if _NAMED_VALUE.match(msg) else f"{key}: {msg}"
    raise ConfigError(msg) from None

"""Named choices (datasets, losses, estimators, optimisers, schemes, programs).

A :class:`Registry` maps a name to a factory and refuses unknown names with a
:class:`ConfigError` that names the config key, the value given and every valid
choice, so user mistakes surface before anything is traced or compiled.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
  """A user error in a configuration: raised before any computation starts.

  The launcher prints its message (one paragraph, no traceback) and exits with
  status 2.
  """


class Registry(Generic[T]):
  """A name → object table that refuses unknown names with a helpful error.

  Example::

    LOSSES = Registry('loss')

    @LOSSES.register('hinge')
    def hinge(...): ...

    LOSSES.get('hinge', key='config.loss')
  """

  def __init__(self, kind: str):
    self.kind = kind
    self._entries: dict[str, T] = {}

  def register(self, name: str, obj: T | None = None):
    """Registers ``obj`` under ``name``; usable as a decorator when obj is None."""
    def add(o: T) -> T:
      if name in self._entries:
        raise ValueError(f"{self.kind} {name!r} is registered twice")
      self._entries[name] = o
      return o
    return add if obj is None else add(obj)

  def get(self, name: str, key: str | None = None) -> T:
    """Returns the entry for ``name``; raises ConfigError listing valid names."""
    if not isinstance(name, str) or name not in self._entries:
      where = f"{key}={name!r}" if key else repr(name)
      raise ConfigError(
          f"{where} is not a known {self.kind}; allowed: "
          f"{', '.join(sorted(self._entries))}.")
    return self._entries[name]

  def names(self) -> list[str]:
    return sorted(self._entries)

  def __contains__(self, name: object) -> bool:
    return name in self._entries

  def __iter__(self) -> Iterator[str]:
    return iter(sorted(self._entries))


def check_positive(value, key: str, *, integer: bool = False):
  """Raises ConfigError unless ``value`` is a positive (integer) number."""
  kind = int if integer else (int, float)
  if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
    what = "a positive integer" if integer else "a positive number"
    raise ConfigError(f"{key}={value!r} is not allowed; expected {what}.")
  return value


def check_in_range(value, key: str, low: float, high: float):
  """Raises ConfigError unless low <= value <= high."""
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
    raise ConfigError(
        f"{key}={value!r} is not allowed; expected a number in [{low}, {high}].")
  return value

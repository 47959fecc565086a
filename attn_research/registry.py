"""Name → implementation registries, one per family of variants.

Every variant a config can select (score functions, alignments, encoders, decoders, cells,
optimizers, datasets, …) is looked up by a string in a `Registry`. An unknown name raises an
error that lists the valid ones, so a typo in a sweep fails before any compute is spent.
"""

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from attn_research.errors import ConfigError

T = TypeVar("T")


class UnknownVariantError(ConfigError, KeyError):
  """Raised when a config names a variant that is not registered."""

  def __str__(self) -> str:  # KeyError quotes its message; show it plainly.
    return str(self.args[0])


class Registry(Generic[T]):
  """A named family of variants.

  Attributes:
    family: what the family is called in messages and in `experiments.variants`.
    config_key: the config field that selects a member, named in error messages.
  """

  def __init__(self, family: str, config_key: str):
    self.family = family
    self.config_key = config_key
    self._entries: dict[str, T] = {}

  def register(self, name: str) -> Callable[[T], T]:
    """Decorator that registers `obj` under `name`."""

    def add(obj: T) -> T:
      if name in self._entries:
        raise ValueError(f"{self.family} {name!r} is registered twice.")
      self._entries[name] = obj
      return obj

    return add

  def get(self, name: str) -> T:
    try:
      return self._entries[name]
    except KeyError:
      raise UnknownVariantError(
        f"Unknown {self.family} {name!r} for {self.config_key}. "
        f"Valid names: {', '.join(self.names())}."
      ) from None

  def names(self) -> list[str]:
    return list(self._entries)

  def __contains__(self, name: str) -> bool:
    return name in self._entries

  def __iter__(self) -> Iterator[str]:
    return iter(self._entries)

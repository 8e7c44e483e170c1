"""A read-only mapping whose values are built on first use (the specs of a service's methods:
building them all at once makes the classes of every request and response, milliseconds of
every plugin's start-up; docs/internals.md §7)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

S = TypeVar("S")
V = TypeVar("V")


class LazyMapping(Mapping[str, V], Generic[S, V]):
    """``build(sources[key])`` for each key, built once, on first access; iteration is in the
    sources' order. ``rekeyed`` gives a view under other names that shares what is built."""

    def __init__(
        self,
        sources: Mapping[str, S],
        build: Callable[[S], V],
        *,
        keys: Mapping[str, str] | None = None,
        built: dict[str, V] | None = None,
    ) -> None:
        self._sources = sources
        self._build = build
        # This mapping's key -> the source's key.
        self._keys = {k: k for k in sources} if keys is None else keys
        self._built: dict[str, V] = {} if built is None else built

    def rekeyed(self, name: Callable[[str], str]) -> LazyMapping[S, V]:
        """The same values, each under ``name(source key)``."""
        keys = {name(k): k for k in self._sources}
        return LazyMapping(self._sources, self._build, keys=keys, built=self._built)

    def __getitem__(self, key: str) -> V:
        source = self._keys[key]
        try:
            return self._built[source]
        except KeyError:
            # Two threads may build one at once: equal values, of which one is kept.
            value = self._built[source] = self._build(self._sources[source])
            return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

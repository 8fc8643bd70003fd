"""Registries (fast-reid style): config names → constructors. Translation from config happens here only.

Methods register with ``@METHODS.register("name")``; a recipe's ``method.name`` picks one and its
``method.params`` mapping is passed as keyword arguments to the constructor (plus the shared
``model`` section). New methods (BDAM, Sew+MCM, CFAM, weakly supervised) are new registrations, no
engine change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pedes_core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name → factory mapping with clear errors for unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(fn: Callable[..., T]) -> Callable[..., T]:
            if name in self._items and self._items[name] is not fn:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = fn
            return fn

        return deco

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._items:
            known = ", ".join(sorted(self._items)) or "<none>"
            raise ConfigError(f"unknown {self.kind} {name!r} (known: {known})")
        return self._items[name]

    def build(self, name: str, **kwargs: Any) -> T:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items


METHODS: Registry[Any] = Registry("training method")

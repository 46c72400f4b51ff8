"""The one dict round trip of every system config (recipes and weights metadata store plain dicts)."""

from __future__ import annotations

import dataclasses
from typing import Any, Self, TypeVar

from ..link.errors import InputError

ConfigT = TypeVar("ConfigT", bound="DictConfig")


class DictConfig:
    """Mixin for dataclass configs: :meth:`to_dict` and :meth:`from_dict`, which refuses unknown keys."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dict of every field."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`; missing keys take their defaults, unknown keys raise ``ValueError``."""
        known = [field.name for field in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InputError(f"unknown {cls.__name__} keys {unknown}; known keys: {', '.join(known)}")
        return cls(**values)

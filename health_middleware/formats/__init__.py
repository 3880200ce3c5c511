"""Response formats. Each renders a :class:`Report` into ``(content_type, body)``
ahead of time, when a snapshot is built; a request never serialises."""

from __future__ import annotations

from collections.abc import Callable

from health_middleware.endpoint import Endpoint
from health_middleware.formats import ietf
from health_middleware.report import Report, Service

Renderer = Callable[[Report, Endpoint, Service, float], tuple[str, bytes]]

RENDERERS: dict[str, Renderer] = {
    "ietf": ietf.render,
}


def renderer(name: object) -> Renderer:
    if not isinstance(name, str) or name not in RENDERERS:
        raise ValueError(f"unknown format {name!r}: choose one of {sorted(RENDERERS)}")
    return RENDERERS[name]

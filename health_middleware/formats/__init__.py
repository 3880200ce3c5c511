"""Response formats. A format renders a report into a finished response ahead of
time, when a snapshot is built: every format costs a request the same.

``format=`` takes a name (``"ietf"``, ``"microprofile"``, ``"spring"``,
``"envelope"``, ``"text"``, ``"openmetrics"``, ``"html"``: the status page, or
``"negotiate"``: each request's ``Accept`` header or ``?format=`` chooses) or a format
object for options, e.g. ``Envelope(ok="服务正常运行")``, ``MicroProfile(version="1.0")``,
``Html(refresh=10)`` or ``Negotiate(default="text")``.

A format of your own is any object with the ``render`` method of ``Format``.
"""

# Public. A format sees only a Report and the Service (model.report): it imports
# model, web and config, never the engine.

from __future__ import annotations

import inspect
from collections.abc import Callable

from health_middleware.formats.base import Format, Rendered, Report, Service
from health_middleware.formats.envelope import Envelope
from health_middleware.formats.html import Html
from health_middleware.formats.ietf import Ietf
from health_middleware.formats.info import Info
from health_middleware.formats.microprofile import MicroProfile
from health_middleware.formats.negotiate import Negotiate
from health_middleware.formats.openmetrics import OpenMetrics
from health_middleware.formats.spring import Spring
from health_middleware.formats.text import Text

NAMED: dict[str, Callable[[], Format]] = {
    "ietf": Ietf,
    "microprofile": MicroProfile,
    "spring": Spring,
    "envelope": Envelope,
    "text": Text,
    "openmetrics": OpenMetrics,
    "html": Html,
    "negotiate": Negotiate,
}


def resolve(format: object) -> Format:  # the public option's name
    """The format object for a ``format=`` option; anything else is refused at once.

    Args:
        format: A format's name (a key of ``NAMED``) or a format object.

    Returns:
        A new format object for a name; the object itself otherwise.

    Raises:
        ValueError: An unknown name (the message lists the known ones).
        TypeError: Neither a name nor an object whose ``render`` takes
            ``(report, service, now)``.
    """
    if isinstance(format, str):
        if format not in NAMED:
            raise ValueError(f"unknown format {format!r}: choose one of {sorted(NAMED)}")
        return NAMED[format]()
    render = getattr(format, "render", None)
    if not callable(render):
        raise TypeError(f"format must be a name or a format object, got {type(format).__name__}")
    try:
        signature = inspect.signature(render)
    except (TypeError, ValueError):  # a callable without one (a C function): its risk
        return format  # type: ignore[return-value]  # checked: it has a render method
    try:
        signature.bind(None, None, 0.0)
    except TypeError:
        raise TypeError(
            f"{type(format).__name__}.render{signature} cannot be called as "
            "render(report, service, now): a format renders the report with the service's "
            "fields at the wall-clock time now (see Format.render)"
        ) from None
    return format  # type: ignore[return-value]  # checked: render(report, service, now)


__all__ = [
    "NAMED",
    "Envelope",
    "Format",
    "Html",
    "Ietf",
    "Info",
    "MicroProfile",
    "Negotiate",
    "OpenMetrics",
    "Rendered",
    "Report",
    "Service",
    "Spring",
    "Text",
    "resolve",
]

"""``format="negotiate"``: one URL, every reader. The endpoint renders each of its
variants ahead of time (``snapshot.build``), and a request gets the one its
``?format=`` names, else the one its ``Accept`` header rates highest, else the
default: a probe or a tool that asks for nothing it has is never refused. Every
variant's response carries ``Vary: Accept``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from health_middleware.formats.base import Rendered
from health_middleware.formats.html import Html
from health_middleware.formats.ietf import Ietf
from health_middleware.formats.text import Text
from health_middleware.model.report import Format, Report, Service
from health_middleware.web.negotiate import choose

# Each variant's media types, the first being the one its response is sent as.
MEDIA_TYPES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "ietf": ("application/health+json", "application/json"),
        "text": ("text/plain",),
        "openmetrics": ("application/openmetrics-text",),
        "html": ("text/html", "application/xhtml+xml"),
    }
)
_CACHE_SIZE = 256  # distinct (Accept, query) pairs remembered per endpoint
_CACHE_KEY = 512  # longer pairs are chosen afresh, never kept (memory stays bounded)


def _default_formats() -> dict[str, Format]:
    formats: dict[str, Format] = {"ietf": Ietf(), "text": Text(), "html": Html()}
    try:
        from health_middleware.formats.openmetrics import OpenMetrics

        formats["openmetrics"] = OpenMetrics()
    except ImportError:  # no prometheus_client: openmetrics is not offered
        pass
    return formats


@dataclass(frozen=True, eq=False)
class Negotiate:
    """One URL for every reader: each request gets the variant it asks for.

    The endpoint renders each variant ahead of time; a request gets the one its
    ``?format=`` names, else the one its ``Accept`` header rates highest, else the
    default: a probe or a tool that asks for nothing offered is never refused. Every
    variant's response carries ``Vary: Accept``.

    Attributes:
        default: The variant for a request that asks for none offered.
        formats: The variants offered, by name (``ietf``, ``text``, ``openmetrics``,
            ``html``) with the format object of each; by default all four (the
            ``openmetrics`` variant where ``prometheus_client`` is installed).
    """

    default: str = "ietf"
    formats: Mapping[str, Format] = field(default_factory=_default_formats)
    _chosen: dict[tuple[bytes | None, bytes | str | None], str] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.formats, Mapping) or not self.formats:
            raise TypeError("Negotiate(formats=...) must map variant names to format objects")
        unknown = set(self.formats) - set(MEDIA_TYPES)
        if unknown:
            raise ValueError(
                f"Negotiate(formats=...) has unknown variants {sorted(unknown)}: "
                f"choose from {sorted(MEDIA_TYPES)}"
            )
        for name, variant in self.formats.items():
            if not callable(getattr(variant, "render", None)):
                raise TypeError(f"Negotiate(formats=...)[{name!r}] must be a format object")
        if self.default not in self.formats:
            raise ValueError(f"Negotiate(default={self.default!r}) must be one of its formats")
        object.__setattr__(self, "formats", MappingProxyType(dict(self.formats)))

    @property
    def offers(self) -> tuple[tuple[str, str], ...]:
        """The ``(variant, media type)`` pairs offered, the default's first: it wins
        every tie."""
        names = [self.default, *(n for n in self.formats if n != self.default)]
        return tuple((name, media) for name in names for media in MEDIA_TYPES[name])

    def pick(self, accept: bytes | None, query: bytes | str | None) -> str:
        """The variant a request gets (remembered for the headers seen most).

        Args:
            accept: The request's ``Accept`` header, or None.
            query: The request's query string, where ``format=`` may name a variant.

        Returns:
            The variant's name.
        """
        key = (accept, query)
        name = self._chosen.get(key)
        if name is None:
            name = choose(accept, self.offers, self.default, query)
            if len(accept or b"") + len(query or b"") <= _CACHE_KEY:
                if len(self._chosen) >= _CACHE_SIZE:
                    self._chosen.clear()
                self._chosen[key] = name
        return name

    def render(self, report: Report, service: Service, now: float) -> Rendered:
        """The default variant's response (the endpoint renders every variant itself,
        ahead of time). The arguments are ``Format.render``'s."""
        return self.formats[self.default].render(report, service, now)

"""Content negotiation for an endpoint that opts in (``format="negotiate"``): which
of its pre-rendered variants a request gets, from ``?format=`` (which wins) and the
``Accept`` header (RFC 9110 section 12.5.1, q-values included).

The parser is small and strict: an element it cannot read (a bad media range, a
q-value that is not ``0``-``1`` with at most three decimals) is skipped, never
raised; a header past ``MAX_ACCEPT`` bytes or ``MAX_RANGES`` elements is read only
that far. Nothing here raises on any input.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_ACCEPT = 4096  # bytes of an Accept header that are read
MAX_RANGES = 64  # media ranges of an Accept header that are read

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")

MAX_PARAMETERS = 8  # per media range: more only costs the parser

# (type, subtype, q): one media range of an Accept header, lower-cased.
Range = tuple[str, str, float]


def parse_accept(header: bytes | str | None) -> list[Range]:
    """The media ranges of an Accept header, in order; malformed elements skipped."""
    if header is None:
        return []
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    if len(header) > MAX_ACCEPT:
        # Cut at an element's end: half an element ("text/html" of "text/html;q=0")
        # could say the opposite of what the client asked.
        header = header[:MAX_ACCEPT].rpartition(",")[0]
    ranges: list[Range] = []
    for element in header.split(",")[:MAX_RANGES]:
        parsed = _parse_range(element)
        if parsed is not None:
            ranges.append(parsed)
    return ranges


def _parse_range(element: str) -> Range | None:
    media, *parameters = element.split(";", MAX_PARAMETERS)  # a few are ever meaningful
    kind, slash, subtype = media.strip().lower().partition("/")
    if not slash or not _TOKEN.fullmatch(kind) or not _TOKEN.fullmatch(subtype):
        return None
    if kind == "*" and subtype != "*":
        return None  # "*/json" is no media range
    q = 1.0
    for parameter in parameters:
        name, equals, value = parameter.strip().partition("=")
        if name.strip().lower() != "q":
            continue  # other parameters (version=...) do not change the choice
        value = value.strip()
        if not equals or not _QVALUE.fullmatch(value):
            return None  # a q-value that cannot be read: the element is dropped
        q = float(value)
        break  # parameters after q are accept-extensions
    return kind, subtype, q


def _quality(ranges: Sequence[Range], media: str) -> float | None:
    """The q of the most specific range matching ``media`` (``type/subtype``), or
    None when none matches."""
    kind, _, subtype = media.partition("/")
    best: tuple[int, float] | None = None
    for range_kind, range_subtype, q in ranges:
        if range_kind == kind and range_subtype == subtype:
            specificity = 2
        elif range_kind == kind and range_subtype == "*":
            specificity = 1
        elif range_kind == "*":
            specificity = 0
        else:
            continue
        if best is None or specificity > best[0]:
            best = (specificity, q)
    return None if best is None else best[1]


def choose(
    accept: bytes | str | None,
    offers: Sequence[tuple[str, str]],
    default: str,
    query: bytes | str | None = None,
) -> str:
    """The variant (a name of ``offers``, pairs of name and media type in the
    server's order of preference) a request gets: ``?format=<name>`` if it names an
    offer; else the offer the Accept header rates highest (ties: the server's order);
    else ``default`` (no Accept, or nothing acceptable: a probe is never refused)."""
    named = format_parameter(query)
    if named is not None and any(name == named for name, _ in offers):
        return named
    ranges = parse_accept(accept)
    if not ranges:
        return default
    best, best_q = default, 0.0
    for name, media in offers:
        q = _quality(ranges, media)
        if q is not None and q > best_q:
            best, best_q = name, q
    return best


def format_parameter(query: bytes | str | None) -> str | None:
    """The value of ``format=`` in a query string (the first one), or None."""
    if not query:
        return None
    if isinstance(query, bytes):
        query = query[:MAX_ACCEPT].decode("latin-1")
    for pair in query[:MAX_ACCEPT].split("&"):
        name, equals, value = pair.partition("=")
        if name == "format" and equals:
            return value.lower()
    return None

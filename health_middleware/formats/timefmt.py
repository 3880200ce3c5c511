"""Timestamps as the formats print them."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(timestamp: float) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``: ``2026-02-25T10:30:00.000Z``."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"

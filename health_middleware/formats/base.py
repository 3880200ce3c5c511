"""What every format shares: the rendered response and the format protocol (defined
with the endpoint, which holds its format)."""

from __future__ import annotations

from health_middleware.model.endpoint import Format, Rendered, status_code

__all__ = ["Format", "Rendered", "status_code"]

"""``text/html``: a status page for people, rendered ahead of time like every format.

One self-contained page: no external assets and no script (a Content-Security-Policy
meta tag forbids both), a ``<meta http-equiv="refresh">`` to reload itself, readable
on a phone (viewport, a layout that stacks on narrow screens) and in a dark theme
(``prefers-color-scheme``). Every status is a word and a symbol, never colour alone;
a non-critical check off pass says "(non-critical)". Each check shows its status,
the time its last run took, its observed value, when its status last changed, and
(off pass) the same output the JSON formats would show (``expose_errors`` and the
details token decide, as everywhere). The recent
transitions of the whole and of each counted check close the page. All text is
escaped: check outputs and observed values come from code that may be hostile.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import orjson

from health_middleware.formats.base import Rendered
from health_middleware.formats.info import human_duration
from health_middleware.formats.timefmt import iso_utc
from health_middleware.model.report import Counted, Report, Service, Transition

CONTENT_TYPE = "text/html; charset=utf-8"

# The word and the symbol of each status (and of the phases that fail a report).
LABELS = {
    "pass": ("PASS", "\u2714"),  # heavy check mark
    "warn": ("WARN", "\u26a0"),  # warning sign
    "fail": ("FAIL", "\u2716"),  # heavy multiplication x
    "starting": ("STARTING", "\u2026"),  # ellipsis
    "draining": ("DRAINING", "\u23f8"),  # pause
    "stale": ("STALE", "\u231b"),  # hourglass
}

_STYLE = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1f23;--muted:#57606a;--line:#d0d7de;
--pass:#1a7f37;--warn:#9a6700;--fail:#cf222e}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#8d96a0;
--line:#30363d;--pass:#3fb950;--warn:#d29922;--fail:#f85149}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:60rem;padding:1rem;background:var(--bg);color:var(--fg);
font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.3rem;margin:0 0 .5rem}h2{font-size:1.05rem;margin:1.5rem 0 .5rem}
.badge{display:inline-block;font-weight:700;padding:.15rem .6rem;border:2px solid;
border-radius:.4rem}
.pass{color:var(--pass)}.warn{color:var(--warn)}.fail{color:var(--fail)}
.muted{color:var(--muted)}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid var(--line);
vertical-align:top;overflow-wrap:anywhere}
th{font-size:.85rem;color:var(--muted);font-weight:600}
td.name{font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
td.status{font-weight:700;white-space:nowrap}.note{font-weight:400;color:var(--muted)}
ol{padding-left:1.2rem}li{margin:.2rem 0}
@media (max-width:40rem){thead{display:none}
table,tbody,tr,td{display:block;width:100%}
tr{border:1px solid var(--line);border-radius:.4rem;margin:0 0 .6rem;padding:.3rem}
td{border:0;padding:.15rem .3rem}td:empty{display:none}
td[data-label]::before{content:attr(data-label) ": ";color:var(--muted);font-weight:400;
font-family:system-ui,sans-serif}}
"""


def _label(key: str, css: str | None = None) -> str:
    """A status as the page shows it: symbol and word, the colour (``css``, else the
    status's own) a bonus."""
    word, symbol = LABELS[key]
    if css is None:
        css = key if key in ("pass", "warn") else "fail"
    return (
        f'<span class="{css}"><span aria-hidden="true">{symbol}</span> '
        f'<span class="word">{word}</span></span>'
    )


def _ago(then: float, now: float) -> str:
    return f'<time datetime="{iso_utc(then)}">{human_duration(now - then)} ago</time>'


def _observed(counted: Counted) -> str:
    outcome = counted.outcome
    if outcome.observed_value is None:
        return ""
    value = orjson.dumps(outcome.observed_value).decode()
    if outcome.observed_unit:
        value += " " + outcome.observed_unit
    return escape(value)


def _status(counted: Counted, report: Report) -> str:
    """A check's status cell: a non-critical check off pass says so in words (and a
    failure that only degrades the whole takes the colour of a warning), so it never
    looks like a critical one."""
    status = counted.status
    if counted.check.critical or status == "pass":
        return _label(status)
    css = "warn" if status == "warn" or not report.fails(counted) else "fail"
    return f'{_label(status, css)} <span class="note">(non-critical)</span>'


def _row(counted: Counted, report: Report, service: Service, now: float) -> str:
    outcome = counted.outcome
    output = counted.output(service) if outcome.status != "pass" else None
    changed = "" if counted.changed_at is None else _ago(counted.changed_at, now)
    cells = (
        ("Check", "name", escape(counted.name)),
        ("Status", "status", _status(counted, report)),
        ("Last run took", "duration", f"{outcome.duration * 1000:.1f} ms"),
        ("Observed", "observed", _observed(counted)),
        ("Changed", "changed", changed),
        ("Output", "output", escape(output or "")),
    )
    tds = "".join(
        f'<td class="{css}" data-label="{label}">{value}</td>' for label, css, value in cells
    )
    critical = "true" if counted.check.critical else "false"
    return (
        f'<tr data-check="{escape(counted.name)}" data-status="{outcome.status}" '
        f'data-critical="{critical}">{tds}</tr>'
    )


def _transition(transition: Transition, now: float) -> str:
    what = "the service" if transition.name is None else escape(transition.name)
    old = "" if transition.old is None else _label(transition.old) + " \u2192 "
    return f"<li>{_ago(transition.time, now)}: <b>{what}</b> {old}{_label(transition.new)}</li>"


# The transitions a page shows: enough to read a flap, few enough that redrawing the page
# (each second, on the refresher, which is the app's loop under ASGI) stays cheap.
MAX_TRANSITIONS = 30


@dataclass(frozen=True, slots=True)
class Html:
    """``text/html``: a status page for people, self-contained (no script, no
    external asset) and reloading itself.

    Each check with its status (a word and a symbol, never colour alone), the time
    its last run took, its observed value, when its status last changed and, off
    pass, the output the JSON formats would show; then the recent transitions of the
    whole and of each check. Every text is escaped.

    Attributes:
        refresh: Seconds between two reloads of the page, from 1 to 3600.
    """

    refresh: int = 5

    def __post_init__(self) -> None:
        if isinstance(self.refresh, bool) or not isinstance(self.refresh, int):
            raise TypeError("Html(refresh=...) must be a whole number of seconds")
        if not 1 <= self.refresh <= 3600:
            raise ValueError("Html(refresh=...) must be from 1 to 3600 seconds")

    def render(self, report: Report, service: Service, now: float) -> Rendered:
        """The status page, with the endpoint's HTTP status for the report. The
        arguments are ``Format.render``'s."""
        key = report.status if report.phase == "serving" else report.phase
        title = service.service_id or "Health"
        parts = [
            '<!doctype html><html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width,initial-scale=1">',
            f'<meta http-equiv="refresh" content="{self.refresh}">',
            '<meta http-equiv="Content-Security-Policy" '
            "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
            f"<title>{LABELS[key][0]} \u2013 {escape(title)}</title>",
            f"<style>{_STYLE}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            f'<p id="status" data-status="{report.status}">'
            f'<span class="badge {key if key in ("pass", "warn") else "fail"}">'
            f"{_label(key)}</span></p>",
        ]
        if report.output:
            parts.append(f'<p id="output">{escape(report.output)}</p>')
        if report.details:
            facts = [f"version {escape(service.version)}"] if service.version else []
            if service.description:
                facts.append(escape(service.description))
            if facts:
                parts.append('<p class="muted">' + " \u00b7 ".join(facts) + "</p>")
            if report.checks:
                parts.append(
                    '<h2>Checks</h2><table id="checks"><thead><tr><th>Check</th><th>Status</th>'
                    "<th>Last run took</th><th>Observed</th><th>Changed</th><th>Output</th>"
                    "</tr></thead><tbody>"
                )
                parts.extend(_row(counted, report, service, now) for counted in report.checks)
                parts.append("</tbody></table>")
            names = {counted.name for counted in report.checks}
            shown = [t for t in report.transitions if t.name is None or t.name in names]
            shown = shown[:MAX_TRANSITIONS]  # newest first; the page is redrawn each second
            if shown:
                parts.append('<h2>Recent transitions</h2><ol id="transitions">')
                parts.extend(_transition(transition, now) for transition in shown)
                parts.append("</ol>")
        parts.append(
            f'<p class="muted"><small>As of {iso_utc(now)}; this page reloads every '
            f"{self.refresh} s.</small></p></body></html>"
        )
        body = "".join(parts).encode()
        return Rendered(report.code, CONTENT_TYPE, body)

"""The status page (``format="html"``): escaped, honest about errors, pre-rendered,
and what a person sees in a real browser (headless Chromium, from Debian)."""

from __future__ import annotations

import os
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from health_middleware import CheckResult, Health
from health_middleware.formats import Html
from health_middleware.model.result import Outcome, from_exception, from_return, from_timeout
from tests.support import REPO, chromium

SHOTS = REPO / "docs" / "status-page"


def _health(expose_errors: bool = False, **options: object) -> Health:
    health = Health(service_id="procure-api", version="1.4.2", expose_errors=expose_errors)
    health.add_check("db", lambda: True, component_type="datastore")
    health.add_check("cache", lambda: True, critical=False)
    health.endpoint("/status", format=Html(refresh=7), **options)  # type: ignore[arg-type]
    health.engine.publisher.activated = True
    return health


def _record(health: Health, name: str, outcome: Outcome) -> None:
    state = next(s for s in health.engine.results.states() if s.check.name == name)
    health.engine.results.record(state, outcome)


def _page(health: Health) -> str:
    health.engine.publisher.publish()
    answers = health.snapshot.answers["/status"]
    assert answers.slow is False  # costs a request what JSON does: the fast path
    return answers.get.body.decode()


def scenario(name: str, expose_errors: bool = False) -> Health:
    """A service in one of the states the screenshots show."""
    health = _health(expose_errors)
    if name == "starting":
        _record(health, "db", from_return(True, time.time() - 2, 0.004))
        return health
    start = time.time() - 600
    _record(health, "db", from_return(True, start, 0.0042))
    _record(health, "cache", from_return(True, start, 0.0011))
    if name in ("warn", "fail"):
        full = CheckResult(
            "warn", observed_value=93.5, observed_unit="percent", output="almost full"
        )
        _record(health, "cache", from_return(full, start + 120, 0.0013))
    if name == "fail":
        _record(health, "db", from_timeout(2.0, time.time() - 30, 2.0))
    return health


def test_every_status_is_a_word_and_a_symbol_and_the_page_is_self_contained() -> None:
    page = _page(scenario("fail"))
    assert page.startswith("<!doctype html>")
    assert '<meta http-equiv="refresh" content="7">' in page
    assert 'name="viewport"' in page
    assert "prefers-color-scheme:dark" in page
    assert "<script" not in page
    assert "src=" not in page
    assert "href=" not in page
    assert "FAIL" in page
    assert "\u2716" in page
    assert "WARN" in page
    assert "\u26a0" in page
    assert "timeout" in page
    assert "93.5 percent" in page
    assert "2000.0 ms" in page  # the time the last run took
    # db, cache and the whole: their first results, and each change since
    assert page.count("<li>") == 7


def test_hostile_text_is_escaped_and_errors_shown_only_where_json_shows_them() -> None:
    health = _health()
    hostile = CheckResult(
        "warn",
        observed_value={"<img src=x onerror=alert(1)>": "</td>"},
        output="<script>x</script>",
    )
    _record(health, "cache", from_return(hostile, time.time(), 0.001))
    _record(health, "db", from_exception(ValueError("password=hunter2 <b>"), time.time(), 0.001))
    page = _page(health)
    assert "<script>x" not in page
    assert "<img" not in page
    assert '</td>"' not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "ValueError" in page
    assert "hunter2" not in page
    exposed = _health(expose_errors=True)
    _record(exposed, "db", from_exception(ValueError("password=hunter2 <b>"), time.time(), 0.001))
    assert "password=hunter2 &lt;b&gt;" in _page(exposed)


def _status_cell(page: str, check: str) -> str:
    row = re.search(rf'<tr data-check="{check}"[^>]*>(.*?)</tr>', page)
    assert row is not None, page
    cell = re.search(r'<td class="status"[^>]*>(.*?)</td>', row.group(1))
    assert cell is not None, row.group(1)
    return cell.group(1)


def test_a_failing_non_critical_check_says_so_in_words() -> None:
    health = _health()
    _record(health, "db", from_exception(ValueError("x"), time.time(), 0.001))
    _record(health, "cache", from_exception(ValueError("x"), time.time(), 0.001))
    page = _page(health)
    critical, optional = _status_cell(page, "db"), _status_cell(page, "cache")
    assert "FAIL" in critical
    assert "non-critical" not in critical
    assert 'class="fail"' in critical
    assert "FAIL" in optional
    assert "(non-critical)" in optional  # a word, not colour alone
    assert 'class="warn"' in optional  # it only degrades the whole: a warning's colour
    assert 'data-check="cache" data-status="fail" data-critical="false"' in page
    _record(health, "db", from_return(True, time.time(), 0.001))
    assert "(non-critical)" in _status_cell(_page(health), "cache")
    _record(health, "cache", from_return(True, time.time(), 0.001))
    assert "non-critical" not in _status_cell(_page(health), "cache")  # a pass is a pass


def test_without_details_only_the_whole_status() -> None:
    health = _health(details=False)
    _record(health, "db", from_exception(ValueError("x"), time.time(), 0.001))
    _record(health, "cache", from_return(True, time.time(), 0.001))
    page = _page(health)
    assert "FAIL" in page
    assert "ValueError" not in page
    assert 'id="checks"' not in page


def test_refresh_is_validated() -> None:
    for bad in (0, 10_000, 1.5, True):
        with pytest.raises((TypeError, ValueError)):
            Html(refresh=bad)  # type: ignore[arg-type]


_VOID = frozenset(("meta", "link", "br", "img", "input", "hr", "wbr"))


class _Visible(HTMLParser):
    """What a person reads: the text outside <head>, <style> and aria-hidden symbols."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}
        self.transitions: list[str] = []
        self.status = ""
        self._skip = 0
        self._where: list[str] = []
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in _VOID:
            return  # no end tag follows
        if tag in ("head", "style") or values.get("aria-hidden") == "true":
            self._skip += 1
            self._where.append("skip")
        elif tag == "tr" and values.get("data-check"):
            self._where.append("row:" + (values["data-check"] or ""))
            self._text = []
        elif tag == "li" or (tag == "p" and values.get("id") == "status"):
            self._where.append(tag)
            self._text = []
        else:
            self._where.append("")

    def handle_endtag(self, tag: str) -> None:
        where = self._where.pop() if self._where else ""
        text = " ".join(" ".join(self._text).split())
        if where == "skip":
            self._skip -= 1
        elif where.startswith("row:"):
            self.rows[where[4:]] = text
        elif where == "li":
            self.transitions.append(text)
        elif where == "p":
            self.status = text

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._text.append(data)


EXPECTED = {
    "pass": ("PASS", {"db": "PASS", "cache": "PASS"}),
    "warn": ("WARN", {"db": "PASS", "cache": "WARN"}),
    "fail": ("FAIL", {"db": "FAIL", "cache": "WARN"}),
    "starting": ("STARTING", {"db": "PASS"}),
}


def test_what_a_person_sees_inchromium(tmp_path: Path) -> None:
    """Chromium loads each page; its DOM (after parsing and layout) says each
    check's status in words, and lists the transitions. Screenshots of each state
    go to docs/status-page/ when HEALTH_MIDDLEWARE_SCREENSHOTS=1."""
    keep = os.environ.get("HEALTH_MIDDLEWARE_SCREENSHOTS") == "1"
    for name, (whole, checks) in EXPECTED.items():
        page = tmp_path / f"{name}.html"
        page.write_text(_page(scenario(name)))
        dom = chromium("--dump-dom", page.as_uri()).stdout
        seen = _Visible()
        seen.feed(dom)
        assert seen.status == whole, (name, seen.status)
        for check, word in checks.items():
            assert re.search(rf"^{check} {word} ", seen.rows[check]), (name, seen.rows)
        assert set(seen.rows) == set(checks)
        if name == "fail":
            assert seen.transitions[0].endswith("the service WARN \u2192 FAIL")
            assert seen.transitions[1].endswith("db PASS \u2192 FAIL")
            assert seen.transitions[-1].endswith("db PASS")  # its first result
            assert len(seen.transitions) == 7
        if keep:
            for suffix, size, extra in (
                ("", "1000,620", ()),
                ("-phone", "390,780", ()),
                (
                    "-dark",
                    "1000,620",
                    ("--force-dark-mode", "--blink-settings=preferredColorScheme=0"),
                ),
            ):
                if suffix and name not in ("fail",):
                    continue
                shot = SHOTS / f"{name}{suffix}.png"
                chromium(f"--screenshot={shot}", f"--window-size={size}", *extra, page.as_uri())
                assert shot.stat().st_size > 1000

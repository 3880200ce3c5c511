"""Every format against its schema: the seeds' and the ecosystem's."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from werkzeug.test import Client

from health_middleware import CheckResult, Health, WSGIHealthMiddleware
from health_middleware.formats import Envelope, Info, MicroProfile
from health_middleware.formats.info import human_duration
from health_middleware.prometheus import HealthCollector
from tests import schemas
from tests.test_properties import EXPECTED, make_check, mixes
from tests.test_wsgi import wsgi_app

FORMATS = ["ietf", "microprofile", "spring", "envelope", "text", "openmetrics"]
SEED_000_MESSAGES = Envelope(
    ok="服务正常运行", unhealthy="服务暂时不可用", degraded="数据库连接失败"
)


class Fetched:
    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        self.status, self.content_type, self.body = status, content_type, body

    def json(self) -> Any:
        return orjson.loads(self.body)


class Service:
    """A Health with one endpoint per format, served through WSGI."""

    def __init__(self, health: Health) -> None:
        for name in FORMATS:
            health.endpoint(f"/f/{name}", format=name)
        health.endpoint("/f/mp1", format=MicroProfile(version="1.0"))
        health.endpoint("/api/v1/health", format=SEED_000_MESSAGES)
        self.health = health
        self.client = Client(WSGIHealthMiddleware(wsgi_app, health))

    def get(self, path: str) -> Fetched:
        response = self.client.get(path)
        return Fetched(response.status_code, response.headers["Content-Type"], response.get_data())

    def until(self, path: str, status: int, timeout: float = 10) -> Fetched:
        deadline = time.monotonic() + timeout
        while (response := self.get(path)).status != status:
            assert time.monotonic() < deadline, (path, response.body)
            time.sleep(0.01)
        return response


@pytest.fixture
def service() -> Iterator[Service]:
    health = Health(
        service_id="procure-api",
        version="1.4.2",
        release_id="1.4.2-build.7",
        description="Procurement API",
        interval=0.05,
        timeout=0.2,
        notes=["rolling out"],
        links={"about": "https://example.com/docs"},
    )
    running = Service(health)
    yield running
    health.stop()


def control(health: Health, name: str, **options: Any) -> dict[str, Any]:
    """A check whose result the test sets: {'result': ...}."""
    state: dict[str, Any] = {"result": True}
    health.add_check(name, lambda: state["result"], **options)
    return state


def test_ietf_complete(service: Service) -> None:
    health = service.health
    db = control(
        health,
        "postgres:responseTime",
        component_type="datastore",
        component_id="db-primary",
        affected_endpoints=["/orders", "/invoices"],
    )
    cache = control(health, "cache:utilization", critical=False)
    cache["result"] = CheckResult(
        "ok", observed_value=41.5, observed_unit="percent", links={"dashboard": "https://grafana/x"}
    )
    service.until("/health", 200)
    doc = service.get("/health").json()
    jsonschema.validate(doc, schemas.SEED_004)
    assert doc["notes"] == ["rolling out"]
    assert doc["links"] == {"self": "/health", "about": "https://example.com/docs"}
    entry = doc["checks"]["postgres:responseTime"][0]
    assert entry["componentId"] == "db-primary"
    assert "affectedEndpoints" not in entry  # only off pass
    assert "output" not in entry
    assert doc["checks"]["cache:utilization"][0]["links"] == {"dashboard": "https://grafana/x"}
    db["result"] = CheckResult("down", component_id="db-replica")
    doc = service.until("/health", 503).json()
    jsonschema.validate(doc, schemas.SEED_004)
    entry = doc["checks"]["postgres:responseTime"][0]
    assert entry["affectedEndpoints"] == ["/orders", "/invoices"]
    assert entry["componentId"] == "db-replica"  # the result's own wins


def test_ietf_upper_case_validates_against_seed_001() -> None:
    health = Health(version="1.0.0", release_id="1.0.0-build.1", status_case="upper", interval=0.05)
    control(health, "database:responseTime", component_type="datastore")
    running = Service(health)
    doc = running.until("/health", 200).json()
    health.stop()
    jsonschema.validate(doc, schemas.SEED_001)
    assert doc["status"] == "PASS"
    assert doc["checks"]["database:responseTime"][0]["status"] == "PASS"


def test_microprofile_4_and_1(service: Service) -> None:
    db = control(service.health, "db", component_type="datastore")
    service.until("/health", 200)
    up = service.get("/f/microprofile")
    assert up.status == 200
    assert up.content_type == "application/json"
    jsonschema.validate(up.json(), schemas.MICROPROFILE_4)
    assert up.json()["status"] == "UP"
    old = service.get("/f/mp1")
    jsonschema.Draft4Validator(schemas.SEED_002).validate(old.json())
    jsonschema.validate(old.json(), schemas.SEED_002_STRICT)
    assert old.json()["outcome"] == "UP"
    db["result"] = False
    down = service.until("/f/microprofile", 503)
    jsonschema.validate(down.json(), schemas.MICROPROFILE_4)
    assert down.json()["checks"][0] == {
        "name": "db",
        "status": "DOWN",
        "data": {**down.json()["checks"][0]["data"], "status": "fail"},
    }
    assert service.until("/f/mp1", 503).json()["outcome"] == "DOWN"


def test_microprofile_answers_500_when_the_machinery_fails() -> None:
    health = Health(interval=0.05, stale_after=2)
    running = Service(health)
    running.until("/f/microprofile", 200)
    health.stop()  # the refresher is gone: its snapshot goes stale
    stale = running.until("/f/microprofile", 500, timeout=5)
    jsonschema.validate(stale.json(), schemas.MICROPROFILE_4)
    assert running.get("/health").status == 503  # other formats: a plain failure


def test_spring(service: Service) -> None:
    db = control(service.health, "db", component_type="datastore")
    cache = control(service.health, "cache", critical=False)
    cache["result"] = CheckResult("warn", output="evicting")
    service.until("/health", 200)
    doc = service.get("/f/spring").json()
    jsonschema.validate(doc, schemas.SPRING)
    assert doc["status"] == "UP"
    assert doc["components"]["cache"]["status"] == "UP"
    assert doc["components"]["cache"]["details"]["warning"] is True
    db["result"] = False
    doc = service.until("/f/spring", 503).json()
    jsonschema.validate(doc, schemas.SPRING)
    assert (doc["status"], doc["components"]["db"]["status"]) == ("DOWN", "DOWN")
    service.health.endpoint(
        "/f/spring-ready", format="spring", group="ready", details=False, drain=True
    )
    db["result"] = True
    service.until("/f/spring-ready", 200)
    service.health.drain()
    assert service.get("/f/spring-ready").json() == {"status": "OUT_OF_SERVICE"}


def test_envelope_every_shape_of_seed_000() -> None:
    health = Health(service_id="procure-api", interval=0.05, timeout=0.1)
    control(health, "database:responseTime", component_type="datastore")
    other = control(health, "queue")
    running = Service(health)
    healthy = running.until("/api/v1/health", 200)
    assert healthy.content_type == "application/json"
    doc = healthy.json()
    jsonschema.validate(doc, schemas.ENVELOPE)
    assert (doc["code"], doc["message"]) == (0, "服务正常运行")
    assert doc["data"]["status"] == "healthy"
    assert doc["data"]["service"] == "procure-api"
    assert isinstance(doc["data"]["uptime"], int)

    # A datastore that times out: degraded, 50002, with the seed's details.
    release = threading.Event()
    health2 = Health(service_id="procure-api", interval=0.05, timeout=0.1)
    health2.add_check(
        "database:responseTime", lambda: release.wait(10) and None, component_type="datastore"
    )
    running2 = Service(health2)
    running2.until("/health/started", 200)
    degraded = running2.until("/api/v1/health", 503).json()
    release.set()
    health2.stop()
    jsonschema.validate(degraded, schemas.ENVELOPE)
    assert degraded == {
        "code": 50002,
        "message": "数据库连接失败",
        "data": {
            "status": "degraded",
            "timestamp": degraded["data"]["timestamp"],
            "details": "Database connection timeout",
        },
    }
    # Any other critical failure: unhealthy, 50001.
    other["result"] = False
    unhealthy = running.until("/api/v1/health", 503).json()
    jsonschema.validate(unhealthy, schemas.ENVELOPE)
    assert (unhealthy["code"], unhealthy["message"]) == (50001, "服务暂时不可用")
    assert unhealthy["data"]["status"] == "unhealthy"
    # Default English messages on the plain "envelope" name.
    assert running.get("/f/envelope").json()["message"] == "Service temporarily unavailable"
    health.stop()


def test_envelope_timestamp_changes_at_most_once_a_second(service: Service) -> None:
    service.until("/health", 200)
    seen: dict[str, set[bytes]] = {}
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:  # the refresher re-renders every 50 ms here
        body = service.get("/f/envelope").body
        seen.setdefault(orjson.loads(body)["data"]["timestamp"], set()).add(body)
        time.sleep(0.01)
    assert 2 <= len(seen) <= 4
    assert all(len(bodies) == 1 for bodies in seen.values())  # one body per second


def test_text(service: Service) -> None:
    soft = control(service.health, "soft", critical=False)
    service.until("/health", 200)
    assert service.get("/f/text").body == b"pass"
    assert service.get("/f/text").content_type == "text/plain; charset=utf-8"
    soft["result"] = False
    deadline = time.monotonic() + 5
    while service.get("/f/text").body != b"warn":
        assert time.monotonic() < deadline


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_openmetrics_parsed_by_prometheus_client(service: Service) -> None:
    db = control(service.health, "db", component_type="datastore")
    control(service.health, "cache", critical=False)
    service.until("/health", 200)
    response = service.get("/f/openmetrics")
    assert response.content_type.startswith("application/openmetrics-text; version=1.0.0")
    metrics = parse_metrics(response.body.decode())
    assert metrics[("health_status", (("status", "pass"),))] == 1.0
    assert metrics[("health_check_status", (("check", "db"), ("status", "pass")))] == 1.0
    assert metrics[("health_check_duration_seconds", (("check", "db"),))] >= 0
    assert metrics[("health_check_last_success_timestamp_seconds", (("check", "db"),))] > 1e9
    db["result"] = False
    service.until("/health", 503)
    failing = service.get("/f/openmetrics")
    assert failing.status == 200  # a scrape must succeed to record the failure
    metrics = parse_metrics(failing.body.decode())
    assert metrics[("health_status", (("status", "fail"),))] == 1.0
    assert metrics[("health_check_status", (("check", "db"), ("status", "fail")))] == 1.0

    registry = CollectorRegistry()
    registry.register(HealthCollector(service.health))
    from prometheus_client.openmetrics.exposition import generate_latest as openmetrics

    assert parse_metrics(openmetrics(registry).decode()) == metrics
    assert b"health_check_status" in generate_latest(registry)


def test_info_from_arguments_environment_and_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "checkout"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "remote", "add", "origin", "git@github.com:abc/api.git"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.chdir(repo)
    for variables in (
        "GITHUB_SHA",
        "GIT_COMMIT",
        "CI_COMMIT_SHA",
        "HEALTH_REVISION",
        "GITHUB_REPOSITORY",
        "HEALTH_REPO",
        "ENVIRONMENT",
        "HEALTH_ENVIRONMENT",
    ):
        monkeypatch.delenv(variables, raising=False)
    monkeypatch.setenv("ENVIRONMENT", "staging")
    monkeypatch.setenv("HEALTH_BUILD_TYPE", "docker")

    health = Health(version="1.2.0", interval=0.05, info=Info(build_date="2026-11-01"))
    running = Service(health)
    doc = running.get("/health/info").json()
    assert doc["repo"] == "abc/api"  # git, read once
    assert doc["revision"] == head[:12]
    assert doc["version"] == "1.2.0"
    assert doc["environment"] == "staging"  # environment
    assert doc["build_type"] == "docker"
    assert doc["build_date"] == "2026-11-01"  # argument
    assert doc["uptime"].endswith(("second", "seconds"))
    assert isinstance(doc["uptime_seconds"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc["deployed_at"])
    assert "language" not in doc  # opt-in only
    assert running.get("/health/info").status == 200  # before the first round too
    health.drain()
    assert running.get("/health/info").status == 200

    monkeypatch.setenv("GITHUB_SHA", "f00dfeed" * 5)  # CI variables beat git
    later = Service(Health(info=Info(revision="given", language=True)))
    doc = later.get("/health/info").json()
    assert doc["revision"] == "given"  # arguments beat everything
    assert doc["language"].startswith("CPython 3.")
    health.stop()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "1 minute"),
        (3600, "1 hour"),
        (4 * 86400 + 5, "4 days"),
        (2 * 365 * 86400, "2 years"),
    ],
)
def test_human_uptime(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_unknown_or_bad_formats_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        Health().endpoint("/x", format="yaml")
    with pytest.raises(TypeError, match="format object"):
        Health().endpoint("/x", format=42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"1\.0"):
        MicroProfile(version="2.0")
    with pytest.raises(TypeError, match="Envelope"):
        Envelope(ok=1)  # type: ignore[arg-type]


SCHEMA_OF: dict[str, Any] = {
    "/f/microprofile": schemas.MICROPROFILE_4,
    "/f/mp1": schemas.SEED_002_STRICT,
    "/f/spring": schemas.SPRING,
    "/f/envelope": schemas.ENVELOPE,
    "/api/v1/health": schemas.ENVELOPE,
    "/health": schemas.SEED_004,
}


@given(mixes)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_mix_of_outcomes_in_every_format(mix: list[tuple[str, bool, bool]]) -> None:
    release = threading.Event()
    health = Health(service_id="s", interval=60, timeout=0.05)
    kinds = {}
    for i, (kind, critical, is_async) in enumerate(mix):
        name = f"c{i}:{kind}"
        kinds[name] = (EXPECTED.get(kind, "fail"), critical)
        health.add_check(
            name,
            make_check(kind, is_async, release),
            critical=critical,
            component_type="datastore" if i % 2 else "component",
        )
    running = Service(health)
    try:
        running.until("/health/started", 200)
        from health_middleware.model.status import aggregate

        expected = aggregate((critical, status) for status, critical in kinds.values())  # type: ignore[misc]
        code = 503 if expected == "fail" else 200
        for path, schema in SCHEMA_OF.items():
            response = running.get(path)
            jsonschema.validate(response.json(), schema)
            assert response.status == code, path
        assert running.get("/f/text").body.decode() == expected
        metrics = parse_metrics(running.get("/f/openmetrics").body.decode())
        assert metrics[("health_status", (("status", expected),))] == 1.0
    finally:
        release.set()
        health.stop()


# -- the whole is what the listed checks say (MicroProfile's AND, Spring's aggregation) ----

_SPRING_ORDER = ("DOWN", "OUT_OF_SERVICE", "UP", "UNKNOWN")


def _spring_aggregate(components: dict[str, Any]) -> str:
    statuses = {c["status"] for c in components.values()} or {"UP"}
    return next(s for s in _SPRING_ORDER if s in statuses)


def _conjunction(checks: list[dict[str, Any]], key: str) -> str:
    return "DOWN" if any(c[key] == "DOWN" for c in checks) else "UP"


def _assert_consistent(running: Service) -> None:
    doc = running.get("/f/microprofile").json()
    assert doc["status"] == _conjunction(doc["checks"], "status"), doc
    doc = running.get("/f/mp1").json()
    assert doc["outcome"] == _conjunction(doc["checks"], "state"), doc
    spring = running.get("/f/spring").json()
    assert spring["status"] == _spring_aggregate(spring["components"]), spring


def test_a_non_critical_failure_keeps_every_format_self_consistent(service: Service) -> None:
    control(service.health, "db")
    cache = control(service.health, "cache", critical=False)
    cache["result"] = False
    service.until("/health", 200)
    doc = service.get("/f/microprofile").json()
    assert doc["status"] == "UP"
    entry = next(c for c in doc["checks"] if c["name"] == "cache")
    assert entry["status"] == "UP"  # a warning for the whole: UP, its failure in data
    assert entry["data"]["status"] == "fail"
    assert entry["data"]["critical"] is False
    spring = service.get("/f/spring").json()
    assert spring["components"]["cache"]["status"] == "UP"
    assert spring["components"]["cache"]["details"]["warning"] is True
    _assert_consistent(service)


def test_starting_draining_and_failing_phases_stay_self_consistent() -> None:
    release = threading.Event()
    health = Health(interval=0.05, timeout=5)
    health.add_check("slow", lambda: release.wait(5))
    running = Service(health)
    health.endpoint("/f/mp-ready", group="ready", format="microprofile", details=False)
    starting = running.get("/f/microprofile")
    assert starting.status == 503
    assert starting.json()["checks"][-1]["name"] == "starting"
    _assert_consistent(running)
    release.set()
    running.until("/f/microprofile", 200)
    health.drain()
    health.endpoint("/f/spring-ready", group="ready", format="spring", drain=True)
    spring = running.until("/f/spring-ready", 503).json()
    assert spring["status"] == "OUT_OF_SERVICE"
    assert spring["components"]["draining"]["status"] == "OUT_OF_SERVICE"
    minimal = running.get("/f/mp-ready").json()
    assert minimal["status"] == _conjunction(minimal["checks"], "status") == "UP"
    health.stop()


def test_a_failing_minimal_microprofile_body_lists_why() -> None:
    health = Health(interval=0.05)
    health.add_check("db", lambda: False)
    health.endpoint("/q/ready", group="ready", format="microprofile", details=False)
    running = Service(health)
    running.until("/health/started", 200)
    doc = running.get("/q/ready").json()
    assert doc["status"] == "DOWN"
    assert doc["checks"] == [
        {"name": "checks", "status": "DOWN", "data": {"output": "failing: db"}}
    ]
    health.stop()


# -- no credentials from a repository URL reach /health/info -------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://deploy:{secret}@git.example.com/repo.git",
        "https://deploy:{secret}@git.example.com/abc/api.git",
        "https://{secret}@github.com/abc/api",
        "https://x-access-token:{secret}@github.com/abc/api.git/",
        "ssh://git:{secret}@git.example.com:2222/abc/api.git",
        "{secret}@git.example.com:abc/api.git",
        "http://user:{secret}@10.0.0.1:8080/scm/abc/api.git?private_token={secret}",
        "git.example.com/abc/api.git?token={secret}#{secret}",
    ],
)
def test_no_credentials_from_any_url_form_reach_info(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-T0KEN-value"
    remote = url.format(secret=secret)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("0123456789abcdef0123456789abcdef01234567\n")
    (tmp_path / ".git" / "config").write_text(f'[remote "origin"]\n\turl = {remote}\n')
    monkeypatch.chdir(tmp_path)
    for names in info_variables():
        monkeypatch.delenv(names, raising=False)
    from_git = Service(Health(interval=60)).get("/health/info")
    assert secret.encode() not in from_git.body
    assert from_git.json()["repo"].endswith(("repo", "abc/api"))
    monkeypatch.setenv("HEALTH_REPO", remote)  # the same URL from the environment
    from_environment = Service(Health(interval=60)).get("/health/info")
    assert secret.encode() not in from_environment.body


def info_variables() -> list[str]:
    from health_middleware.formats.info import ENVIRONMENT_VARIABLES

    return [name for names in ENVIRONMENT_VARIABLES.values() for name in names]


def test_a_lone_surrogate_anywhere_in_info_is_rendered_safely(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEALTH_ENVIRONMENT", "prod-\udcff")  # a non-UTF-8 environment
    doc = Service(Health(interval=60)).get("/health/info").json()
    assert doc["environment"] == "prod-\\udcff"


def test_spring_draining_with_a_failing_component_is_down() -> None:
    health = Health(interval=0.05)
    health.add_check("db", lambda: False)
    health.endpoint("/f/spring-ready", group="ready", format="spring", drain=True)
    running = Service(health)
    running.until("/health/started", 200)
    health.drain()
    doc = running.until("/f/spring-ready", 503).json()
    assert doc["status"] == "DOWN" == _spring_aggregate(doc["components"])
    health.stop()


def test_a_check_named_like_a_phase_is_never_overwritten() -> None:
    release = threading.Event()
    health = Health(interval=0.05, timeout=5)
    health.add_check("starting", lambda: True)
    health.add_check("slow", lambda: release.wait(5))
    running = Service(health)
    running.until("/health/live", 200)
    deadline = time.monotonic() + 5
    while "starting" not in running.get("/health").json()["checks"]:  # the check's own
        assert time.monotonic() < deadline
    spring = running.get("/f/spring").json()
    assert spring["components"]["starting"]["status"] == "UP"  # the check, kept
    assert spring["status"] == _spring_aggregate(spring["components"]) == "DOWN"
    mp = running.get("/f/microprofile").json()
    assert [c["status"] for c in mp["checks"] if c["name"] == "starting"] == ["UP"]
    assert mp["status"] == _conjunction(mp["checks"], "status") == "DOWN"
    release.set()
    health.stop()


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com?private_token={secret}",
        "https://git.example.com/?t={secret}#{secret}",
    ],
)
def test_no_token_from_a_url_without_a_path_reaches_info(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-T0KEN-value"
    monkeypatch.setenv("HEALTH_REPO", url.format(secret=secret))
    body = Service(Health(interval=60)).get("/health/info").body
    assert secret.encode() not in body

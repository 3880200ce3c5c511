"""The deployment configs in docs/deploy/ run against a real server where the tool
runs here (nginx, the compose probe command); Kubernetes' manifest is checked against
what the package serves and its probes are made over HTTP as the kubelet makes them."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from health_middleware import Health
from health_middleware.web.prestop import Prestop
from tests.support import (
    REPO,
    celery_process,
    debian_tool,
    free_port,
    get,
    grpc_check,
    server,
    service,
    stop,
    uvicorn,
)

SERVING = 1  # grpc.health.v1.HealthCheckResponse.SERVING

pytestmark = pytest.mark.server
DEPLOY = REPO / "docs" / "deploy"


def container() -> dict[str, Any]:
    manifest = yaml.safe_load((DEPLOY / "kubernetes.yaml").read_text())
    spec = manifest["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] > 5  # beyond the pre-stop delay
    result: dict[str, Any] = spec["containers"][0]
    return result


def test_kubernetes_probes_hit_real_endpoints(tmp_path: Path) -> None:
    api = container()
    token = api["lifecycle"]["preStop"]["httpGet"]["httpHeaders"][0]["value"].removeprefix(
        "Bearer "
    )
    Prestop("/p", token, 5)  # a token the package accepts
    health = Health()
    health.prestop(token)
    probes = {
        kind: api[kind]["httpGet"]["path"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert set(probes.values()) <= set(health.paths)
    assert probes == {
        "startupProbe": "/health/started",
        "livenessProbe": "/health/live",
        "readinessProbe": "/health/ready",
    }
    env = {"HM_TOKEN": token, "HM_INTERVAL": "0.2", "HM_PRESTOP_DELAY": "0.2"}
    with server(uvicorn("tests.apps.flagged:asgi_app"), env) as running:
        deadline = time.monotonic() + 10
        while running.get(probes["startupProbe"]).status != 200:
            assert time.monotonic() < deadline
        for path in probes.values():
            assert running.get(path).status == 200  # kubelet: 200-399 is success
        import http.client

        prestop = api["lifecycle"]["preStop"]["httpGet"]
        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        header = prestop["httpHeaders"][0]
        connection.request("GET", prestop["path"], headers={header["name"]: header["value"]})
        assert connection.getresponse().status == 200
        connection.close()
        assert running.get(probes["readinessProbe"]).status == 503
        assert running.get(probes["livenessProbe"]).status == 200


def test_kubernetes_grpc_probes_ask_real_services(tmp_path: Path) -> None:
    """docs/deploy/kubernetes-grpc.yaml: each ``grpc:`` probe asked as the kubelet asks
    it (``grpc.health.v1.Health/Check`` of its service, ``""`` when none is given;
    SERVING is success, any other answer or error a failure) of a real gRPC server."""
    manifest = yaml.safe_load((DEPLOY / "kubernetes-grpc.yaml").read_text())
    spec = manifest["spec"]["template"]["spec"]
    api = spec["containers"][0]
    (port,) = {p["containerPort"] for p in api["ports"]}
    kinds = ("startupProbe", "livenessProbe", "readinessProbe")
    assert {api[kind]["grpc"]["port"] for kind in kinds} == {port}
    services = {kind: api[kind]["grpc"].get("service", "") for kind in kinds}
    assert services == {
        "startupProbe": "startup",
        "livenessProbe": "liveness",
        "readinessProbe": "",
    }
    drain_delay = 3.0
    assert spec["terminationGracePeriodSeconds"] > 5 + 10  # the drain delay and the grace
    flag = tmp_path / "flag"
    env = {"HM_FLAG": str(flag), "HM_INTERVAL": "0.2", "HM_DRAIN_DELAY": str(drain_delay)}

    def passes(kind: str) -> bool:
        return grpc_check(running.port, services[kind], timeout=1) == SERVING

    def until(kind: str, wanted: bool, bound: float = 10.0) -> None:
        deadline = time.monotonic() + bound
        while passes(kind) != wanted:
            assert time.monotonic() < deadline, f"{kind} never {'passed' if wanted else 'failed'}"
            time.sleep(0.05)

    args = ["tests.apps.grpc_server", "sync", "{port}"]
    with server(args, env, ready=lambda p: isinstance(grpc_check(p, "liveness"), int)) as running:
        until("startupProbe", True)
        assert all(passes(kind) for kind in kinds)
        flag.touch()  # a critical dependency fails: readiness only
        until("readinessProbe", False)
        assert passes("livenessProbe")
        assert passes("startupProbe")
        flag.unlink()
        until("readinessProbe", True)
        os.kill(running.process.pid, signal.SIGTERM)  # the pod is deleted: drain first
        until("readinessProbe", False, bound=drain_delay)
        assert passes("livenessProbe")  # not restarted while it drains
        running.process.wait(drain_delay + 10)
    assert running.exit_code == 0, running.output()


def test_the_celery_worker_manifest_probes_a_real_worker(tmp_path: Path) -> None:
    manifest = yaml.safe_load((DEPLOY / "celery-worker.yaml").read_text())
    (worker,) = manifest["spec"]["template"]["spec"]["containers"]
    assert worker["command"][:4] == ["celery", "-A", "proj", "worker"]  # PID 1: no shell
    (port,) = worker["ports"]
    probes = {kind: worker[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe")}
    probes["readinessProbe"] = worker["readinessProbe"]["httpGet"]
    assert {probe["port"] for probe in probes.values()} == {port["name"]}
    assert port["containerPort"] == 8081  # instrument(app, health, 8081) in its comment
    assert "instrument(app, health, 8081" in (DEPLOY / "celery-worker.yaml").read_text()
    service("Redis", 6379)
    health_port = free_port()
    env = {"HM_PORT": str(health_port), "HM_LOG": str(tmp_path / "worker.log")}
    broker = "redis://127.0.0.1:6379/9"
    with celery_process(broker, "tests.apps.celery_health", "prefork", env):
        deadline = time.monotonic() + 60
        while True:  # the startup probe, as the kubelet makes it: until it succeeds
            with contextlib.suppress(OSError):
                if get(health_port, probes["startupProbe"]["path"]).status == 200:
                    break
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.1)
        for probe in probes.values():
            assert get(health_port, probe["path"]).status == 200, probe


def test_compose_healthcheck_command(tmp_path: Path) -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
    command = compose["services"]["api"]["healthcheck"]["test"]
    assert command[0] == "CMD"
    flag = tmp_path / "flag"
    with server(
        uvicorn("tests.apps.flagged:asgi_app"), {"HM_FLAG": str(flag), "HM_INTERVAL": "0.2"}
    ) as running:
        argv = [a.replace("127.0.0.1:8000", f"127.0.0.1:{running.port}") for a in command[1:]]
        argv[0] = sys.executable  # "python" in the image

        def exit_code() -> int:
            return subprocess.run(
                argv, cwd=REPO, capture_output=True, timeout=30, check=False
            ).returncode

        deadline = time.monotonic() + 10
        while exit_code() != 0:
            assert time.monotonic() < deadline, shlex.join(argv)
        flag.touch()
        deadline = time.monotonic() + 10
        while exit_code() != 1:
            assert time.monotonic() < deadline


def test_nginx_config(tmp_path: Path) -> None:
    binary = debian_tool("nginx", "nginx-light")
    flags = [tmp_path / "a.flag", tmp_path / "b.flag"]
    env = [
        {"HM_NAME": f"app{i + 1}", "HM_FLAG": str(flags[i]), "HM_INTERVAL": "0.2"} for i in range(2)
    ]
    with (
        server(uvicorn("tests.apps.flagged:asgi_app"), env[0]) as a,
        server(uvicorn("tests.apps.flagged:asgi_app"), env[1]) as b,
    ):
        port = free_port()
        log = tmp_path / "access.log"
        text = (DEPLOY / "nginx.conf").read_text()
        for old, new in (
            ("127.0.0.1:8080", f"127.0.0.1:{port}"),
            ("127.0.0.1:8001", f"127.0.0.1:{a.port}"),
            ("127.0.0.1:8002", f"127.0.0.1:{b.port}"),
            ("/var/log/nginx/access.log", str(log)),
        ):
            text = text.replace(old, new)
        config = tmp_path / "nginx.conf"
        config.write_text(text)
        directives = f"daemon off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;"
        process = subprocess.Popen(
            [binary, "-c", str(config), "-p", str(tmp_path), "-g", directives],
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    if get(port, "/health/ready").status == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert {get(port, "/").body.split(b":")[0] for _ in range(6)} == {b"app1", b"app2"}
            for path in ("/health", "/health/", "/health/live", "/health/started"):
                assert get(port, path).status == 200, path
        finally:
            stop(process)
        logged = log.read_text()
        assert "GET / " in logged
        assert "/health" not in logged

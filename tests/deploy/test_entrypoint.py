"""deploy/docker/entrypoint.py: NAME_FILE secrets, exec, the HEALTHCHECK probe, and SIGTERM
reaching a real service started the way the image starts it (real sockets, no Docker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from svc_core.testing import eventually, free_port
from tests.deploy.conftest import ROOT, load_script

ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.py"


@pytest.fixture
def entrypoint() -> Any:
    return load_script("deploy/docker/entrypoint.py")


def test_file_variables_become_variables(entrypoint: Any, tmp_path: Path) -> None:
    (tmp_path / "pepper").write_text("s3cr3t-value\n")
    environ = {
        "PASSWORD_PEPPER_FILE": str(tmp_path / "pepper"),
        "JWT_PUBLIC_KEYS_FILE": "/run/secrets/jwt-public",  # read by the service itself
        "JWT_PRIVATE_KEY_FILE": "/run/secrets/jwt-private",
        "OTHER": "x",
    }
    assert entrypoint.load_file_variables(environ) == ["PASSWORD_PEPPER"]
    assert environ == {
        "PASSWORD_PEPPER": "s3cr3t-value",
        "JWT_PUBLIC_KEYS_FILE": "/run/secrets/jwt-public",
        "JWT_PRIVATE_KEY_FILE": "/run/secrets/jwt-private",
        "OTHER": "x",
    }


def test_both_forms_is_an_error(entrypoint: Any, tmp_path: Path) -> None:
    (tmp_path / "s").write_text("from-file")
    environ = {"IDEMPOTENCY_SECRET": "inline", "IDEMPOTENCY_SECRET_FILE": str(tmp_path / "s")}
    with pytest.raises(entrypoint.EntrypointError, match=r"IDEMPOTENCY_SECRET and .* both set"):
        entrypoint.load_file_variables(environ)


def test_an_unreadable_file_names_the_variable(entrypoint: Any, tmp_path: Path) -> None:
    environ = {"FILES_S3_SECRET_ACCESS_KEY_FILE": str(tmp_path / "missing")}
    with pytest.raises(
        entrypoint.EntrypointError, match="FILES_S3_SECRET_ACCESS_KEY_FILE: cannot read"
    ):
        entrypoint.load_file_variables(environ)


def test_the_default_command_is_the_images_service(entrypoint: Any) -> None:
    assert entrypoint.command([], {"SVC_SERVICE": "order"}) == ["svc-order"]
    assert entrypoint.command(["sh", "-c", "x"], {"SVC_SERVICE": "order"}) == ["sh", "-c", "x"]
    with pytest.raises(entrypoint.EntrypointError, match="SVC_SERVICE"):
        entrypoint.command([], {})


def run_entrypoint(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ENTRYPOINT), *args],
        capture_output=True, text=True, check=False, timeout=60,
        env={"PATH": os.environ["PATH"], **env},
    )  # fmt: skip


def test_exec_passes_the_secret_and_nothing_prints_it(tmp_path: Path) -> None:
    (tmp_path / "pepper").write_text("s3cr3t-value\n")
    probe = "import os; print(os.environ['PASSWORD_PEPPER'], 'PASSWORD_PEPPER_FILE' in os.environ)"
    result = run_entrypoint(
        sys.executable, "-c", probe, env={"PASSWORD_PEPPER_FILE": str(tmp_path / "pepper")}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "s3cr3t-value False\n"


def test_a_configuration_error_exits_with_a_message(tmp_path: Path) -> None:
    result = run_entrypoint(env={"X_FILE": str(tmp_path / "nope"), "SVC_SERVICE": "order"})
    assert result.returncode == 1
    assert result.stderr.strip().startswith("entrypoint: X_FILE: cannot read")
    assert "Traceback" not in result.stderr


class Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = 200 if self.path == "/health" and type(self).status == 200 else 503
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[int, type[Health]]]:
    handler = type("H", (Health,), {"status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def test_healthcheck(health_server: tuple[int, type[Health]]) -> None:
    port, handler = health_server
    assert run_entrypoint("--healthcheck", env={"PORT": str(port)}).returncode == 0
    handler.status = 503
    unhealthy = run_entrypoint("--healthcheck", env={"PORT": str(port)})
    assert unhealthy.returncode == 1
    assert "503" in unhealthy.stderr
    closed = run_entrypoint("--healthcheck", env={"PORT": str(free_port())})
    assert closed.returncode == 1


async def test_a_service_started_like_the_image_stops_cleanly_on_sigterm() -> None:
    """`entrypoint.py` with SVC_SERVICE=cache execs svc-cache (so the signalled PID is the
    service), the HEALTHCHECK probe turns healthy, and SIGTERM ends it with status 0."""
    port = free_port()
    bindir = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "SVC_SERVICE": "cache",
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "ENVIRONMENT": "development",  # in-memory Redis: no shared database touched
        "UVLOOP": "true",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, str(ENTRYPOINT)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:

        async def healthy() -> bool:
            assert process.poll() is None, process.communicate()[1]
            return run_entrypoint("--healthcheck", env={"PORT": str(port)}).returncode == 0

        await eventually(healthy, timeout=30, interval=0.2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

"""The pytest plugin's Redis policy: CI never skips or silently falls back; elsewhere the run
starts a redis-server (or uses fakeredis) and says which in its header."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from svc_core.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
TARGET = "tests/svc_core/test_readme_example.py::test_the_example_service_works"


def run_pytest(**env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("CI", "REDIS_URL")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TARGET],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ci_fails_when_redis_is_unreachable():
    proc = run_pytest(CI="true", REDIS_URL=f"redis://127.0.0.1:{free_port()}")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "CI=true and no Redis answers" in proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH")
def test_elsewhere_a_redis_server_is_started_and_named():
    proc = run_pytest(REDIS_URL=f"redis://127.0.0.1:{free_port()}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "svc_core: tests used redis-server started on port" in proc.stdout


def test_memory_url_uses_fakeredis_and_says_so():
    proc = run_pytest(REDIS_URL="memory://")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "in-memory Redis (fakeredis)" in proc.stdout

"""Embedded stand-ins for development and tests: a throwaway ``redis-server`` on a free port.

Used by the dev stack (when no ``REDIS_URL`` is set and ``redis-server`` is on the PATH), by the
test run when no Redis is reachable, and by tests that stop Redis on purpose.
"""

from __future__ import annotations

import itertools
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

# Below Linux's ephemeral range (32768-60999): a port handed out here is not also the source
# port the kernel picks for some outgoing connection before the server binds it.
_PORTS = range(20000, 32000)
# Handed out in turn from a random start: a stack asks for a dozen ports before it binds any, so
# two calls must never return the same one (random picks did, now and then: "address already in
# use"); the random start keeps processes that run side by side apart.
_turns = itertools.count(random.randrange(len(_PORTS)))  # noqa: S311 - not a secret


def free_port() -> int:
    """A port nothing listens on now, never handed out before by this process (until all
    12,000 have been), chosen outside the ephemeral range so that a client connection elsewhere
    cannot take it before the server that asked for it binds it."""
    for _ in range(len(_PORTS)):
        port = _PORTS[next(_turns) % len(_PORTS)]
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        fallback: int = sock.getsockname()[1]
        return fallback


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A ``redis-server`` process of our own, bound to 127.0.0.1. It saves nothing by itself;
    a ``SAVE`` writes its data into ``data_dir``, which a server started on the same
    ``data_dir`` loads (a restart that keeps the data, as AOF or RDB persistence does)."""

    def __init__(self, port: int | None = None, data_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="svc-redis-"))
        self._dir = self.data_dir

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> RedisServer:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not on the PATH")
        self.proc = subprocess.Popen(  # noqa: S603 - fixed arguments
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own session: a terminal's Ctrl-C reaches the process that started it, which
            # stops it last, after the apps using it have shut down (a quiet Ctrl-C).
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not reachable("127.0.0.1", self.port, 0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

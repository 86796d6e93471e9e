"""Instructions per request, load-independent: a bench server under ``valgrind --tool=callgrind``
(instrumentation off during start-up and warm-up), then a fixed number of requests from another
process; total instructions / requests. For deciding optimisations on a busy machine, where
wall-clock throughput is noise.

    python bench/icount.py bare health auth --requests 3000
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from run import CONFIGS, READY, free_ports, wait_up  # noqa: E402


def drive(port: int, path: str, token: str, total: int, conns: int = 8) -> None:
    """``total`` keep-alive GETs over ``conns`` connections, each sending in lockstep."""
    req = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
    sent = 0
    while sent < total:
        batch = socks[: min(conns, total - sent)]
        for s in batch:
            s.sendall(req)
        for s in batch:
            _read_response(s)
        sent += len(batch)
    for s in socks:
        s.close()


def _read_response(sock: socket.socket) -> None:
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, _, rest = buf.partition(b"\r\n\r\n")
    match = re.search(rb"(?i)content-length:\s*(\d+)", head)
    if not head.startswith(b"HTTP/1.1 2"):
        raise SystemExit(head.decode())
    length = int(match.group(1)) if match else 0
    while len(rest) < length:
        rest += sock.recv(65536)


def count(kind: str, name: str, port: int, keys: Any, env: dict[str, str], n: int) -> float:
    from svc_core.testing import mint_token

    out = Path(tempfile.mkdtemp()) / "callgrind.out"
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(HERE / "servers.py"),
        kind,
        str(port),
    ]
    senv = {**env, **dict(CONFIGS[name].env)}
    proc = subprocess.Popen(cmd, env=senv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = READY.get(CONFIGS[name].kind, "/health")
        wait_up(port, ready, {}, timeout=600, attempt=60)
        time.sleep(1.1)  # see run.py: tokens issued before the server's first second are refused
        token = mint_token(keys, issuer="svc-bench", sub="bench-user")
        drive(port, CONFIGS[name].path, token, 400)
        subprocess.run(
            ["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True
        )
        drive(port, CONFIGS[name].path, token, n)
        subprocess.run(
            ["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True
        )
    finally:
        proc.terminate()
        proc.wait(60)
    text = out.read_text(errors="replace")
    totals = re.findall(r"^(?:summary|totals):\s+(\d+)", text, re.M)
    instructions = max(int(t) for t in totals)
    keep = os.environ.get("ICOUNT_KEEP")
    if keep:
        Path(keep).mkdir(exist_ok=True)
        (Path(keep) / f"callgrind.{name}").write_text(text)
    return instructions / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("configs", nargs="+", choices=list(CONFIGS))
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    from svc_core.testing import KeyPair

    keys = KeyPair.generate()
    env = {
        **os.environ,
        "BENCH_ICOUNT": "1",
        "BENCH_PUBLIC_PEM": keys.public_pem,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [os.environ.get("ICOUNT_PYTHONPATH"), str(HERE.parent)])
        ),
    }
    base = None
    for name, port in zip(args.configs, free_ports(len(args.configs)), strict=True):
        kind = CONFIGS[name].kind
        started = time.monotonic()
        per = count(kind, name, port, keys, env, args.requests)
        base = base or per
        print(
            f"{name:<14} {per:>10,.0f} instr/request   {base / per:5.2f}x of first "
            f"({time.monotonic() - started:.0f}s)",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""``nox -s bench``: throughput of the chassis against bare aiohttp and FastAPI, as ratios.

Each server runs alone on CPU 0 (``taskset``), ``wrk`` drives it from CPU 1; configurations are
interleaved round by round so the machine's noise falls on all of them alike; medians are
reported. Targets (docs/design.md, "Performance budget"): /health through the chassis >= 85% of
bare aiohttp; an authenticated route touching no database >= 75% of bare and >= 2.5x FastAPI.

    nox -s bench                      # 3 rounds of 10 s each
    nox -s bench -- --rounds 1 --duration 3 --uvloop
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
CONFIGS = {
    "bare": "/ping",
    "health": "/health",
    "health-nolog": "/health",  # the same with ACCESS_LOG=false: what the access log costs
    "auth": "/me",
    "fastapi-auth": "/me",
}


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (all sockets held until every port is chosen: closing each
    before asking for the next could hand the same port out twice)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_up(port: int, path: str, headers: dict[str, str], timeout: float = 20) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
            with urllib.request.urlopen(req, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on {port} did not answer {path}")


def wrk(port: int, path: str, token: str, duration: int) -> float:
    cmd = [
        "wrk",
        "-t1",
        "-c64",
        f"-d{duration}s",
        "-H",
        f"Authorization: Bearer {token}",
        f"http://127.0.0.1:{port}{path}",
    ]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "1", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx responses from {path}:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise SystemExit(out)
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--uvloop", action="store_true", help="serve on uvloop")
    parser.add_argument("--only", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")

    from svc_core.testing import KeyPair, mint_token

    keys = KeyPair.generate()
    token = mint_token(keys, issuer="svc-bench", sub="bench-user", ttl=3600)
    env = {
        **os.environ,
        "BENCH_PUBLIC_PEM": keys.public_pem,
        "BENCH_UVLOOP": "1" if args.uvloop else "0",
        "PYTHONPATH": str(HERE.parent),
    }
    env.pop("REDIS_URL", None) if env.get("REDIS_URL", "").startswith("memory") else None
    headers = {"Authorization": f"Bearer {token}"}
    procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    results: dict[str, list[float]] = {name: [] for name in args.only}
    started = time.monotonic()
    try:
        for name, port in zip(args.only, free_ports(len(args.only)), strict=True):
            kind = name.removesuffix("-nolog")
            cmd = [sys.executable, str(HERE / "servers.py"), kind, str(port)]
            if shutil.which("taskset"):
                cmd = ["taskset", "-c", "0", *cmd]
            procs[name] = (
                subprocess.Popen(
                    cmd,
                    env={**env, "BENCH_ACCESS_LOG": "0"} if name.endswith("-nolog") else env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ),
                port,
            )
        for name, (_, port) in procs.items():
            wait_up(port, CONFIGS[name], headers)
        time.sleep(0.5)
        for name, (proc, _) in procs.items():
            if proc.poll() is not None:  # e.g. it could not bind: another server would answer
                raise SystemExit(f"the {name} server exited (code {proc.returncode})")
        total = args.rounds * len(procs)
        done = 0
        for rnd in range(1, args.rounds + 1):
            for name, (_, port) in procs.items():
                wrk(port, CONFIGS[name], token, 2)  # warm-up
                rps = wrk(port, CONFIGS[name], token, args.duration)
                results[name].append(rps)
                done += 1
                print(
                    f"[{done}/{total}, {time.monotonic() - started:.0f}s] round {rnd} "
                    f"{name:<13} {rps:>9,.0f} req/s",
                    flush=True,
                )
    finally:
        for proc, _ in procs.values():
            proc.terminate()
        for proc, _ in procs.values():
            proc.wait(10)

    med = {name: statistics.median(vals) for name, vals in results.items()}
    print("\nconfig          median req/s   runs")
    for name, value in med.items():
        runs = ", ".join(f"{v:,.0f}" for v in results[name])
        print(f"{name:<15} {value:>12,.0f}   {runs}")
    bare = med.get("bare")
    checks = []
    if bare and "health" in med:
        checks.append(("/health through the chassis vs bare", med["health"] / bare, 0.85))
    if bare and "health-nolog" in med:
        checks.append(("/health, no access log, vs bare", med["health-nolog"] / bare, 0.85))
    if bare and "auth" in med:
        checks.append(("authenticated route vs bare", med["auth"] / bare, 0.75))
    if "auth" in med and "fastapi-auth" in med:
        checks.append(("authenticated route vs FastAPI", med["auth"] / med["fastapi-auth"], 2.5))
    if checks:
        print("\nratio                                   measured   target")
        for label, ratio, target in checks:
            verdict = "ok" if ratio >= target else "BELOW TARGET"
            print(f"{label:<38} {ratio:>8.2f}x   >= {target:.2f}x  {verdict}")


if __name__ == "__main__":
    main()

"""``nox -s bench``: the chassis against bare aiohttp and FastAPI, and the services' routes, as
ratios taken in one run (bench/README.md).

Each server runs alone on CPU 0 (``taskset``), ``wrk`` drives it from CPU 1; configurations are
interleaved round by round so the machine's noise falls on all of them alike; medians are
reported. Output: a table on stdout, ``bench/results/<date>-<commit>.json`` and, with
matplotlib, ``docs/bench-throughput.png`` and ``docs/bench-p99.png``.

    nox -s bench                      # 3 rounds of 10 s each, every group
    nox -s bench -- --quick           # smoke check: 1 round of 2 s, under 3 minutes
    nox -s bench -- --only bare health auth --rounds 5
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import groups

HERE = Path(__file__).parent
ROOT = HERE.parent


@dataclasses.dataclass(frozen=True)
class Config:
    name: str
    kind: str  # what bench/servers.py starts
    path: str
    group: str
    what: str
    method: str = "GET"
    body: str | None = None
    env: tuple[tuple[str, str], ...] = ()


ORDER_BODY = json.dumps(
    {
        "currency": "EUR",
        "items": [{"sku": "sku-1", "name": "Widget", "quantity": 2, "unit_price": 1250}],
    }
)
ALL = [
    Config("bare", "bare", "/ping", "chassis", "aiohttp alone, GET /ping"),
    Config("health", "health", "/health", "chassis", "/health through the whole chassis"),
    Config(
        "health-nolog",
        "health",
        "/health",
        "chassis",
        "the same, ACCESS_LOG=false",
        env=(("BENCH_ACCESS_LOG", "0"),),
    ),
    Config("auth", "auth", "/me", "chassis", "authenticated route, no database"),
    Config(
        "auth-traced",
        "auth",
        "/me",
        "chassis",
        "the same, OpenTelemetry on (every request sampled, spans to /dev/null)",
        env=(("BENCH_OTEL_TRACES", "file"),),
    ),
    Config("fastapi-auth", "fastapi-auth", "/me", "chassis", "FastAPI, RS256 every request"),
    Config("fastapi-cached", "fastapi-cached", "/me", "chassis", "FastAPI, verified-token cache"),
    Config("order-get", "service:order", "/orders/{order}", "services", "GET /orders/{id}"),
    Config(
        "order-post", "service:order", "/orders", "services", "POST /orders", "POST", ORDER_BODY
    ),
    Config(
        "cache-put",
        "service:cache",
        "/cache/bench-key",
        "services",
        "PUT /cache/{key} (Redis)",
        "PUT",
        json.dumps({"value": {"hello": "world"}, "ttl_seconds": 600}),
    ),
    Config(
        "cache-get", "service:cache", "/cache/bench-key", "services", "GET /cache/{key} (Redis)"
    ),
    Config("customer-me", "service:customer", "/customers/me", "services", "GET /customers/me"),
]
CONFIGS = {c.name: c for c in ALL}
#: a path each kind answers without a token once it is up (default /health)
READY = {"bare": "/ping", "fastapi-auth": "/docs", "fastapi-cached": "/docs"}
#: (label, numerator, denominator, target): every figure is a ratio within one run
CHECKS = [
    ("/health through the chassis vs bare", "health", "bare", 0.85),
    ("/health, no access log, vs bare", "health-nolog", "bare", None),
    ("authenticated route vs bare", "auth", "bare", 0.75),
    ("authenticated route, tracing on vs off", "auth-traced", "auth", None),
    ("authenticated route vs FastAPI (verify each)", "auth", "fastapi-auth", 2.5),
    ("authenticated route vs FastAPI (token cache)", "auth", "fastapi-cached", 2.0),
    ("GET /orders/{id} vs bare", "order-get", "bare", None),
    ("POST /orders vs bare", "order-post", "bare", None),
    ("PUT /cache/{key} vs bare", "cache-put", "bare", None),
    ("GET /cache/{key} vs bare", "cache-get", "bare", None),
    ("GET /customers/me vs bare", "customer-me", "bare", None),
]
#: the platform groups (bench/groups.py, issue 16 items 5-8), each runnable alone
PLATFORM_GROUPS = ["chat", "files", "events", "journey"]
GROUPS = ["chassis", "services", *PLATFORM_GROUPS]


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


def wait_up(
    port: int, path: str, headers: dict[str, str], timeout: float = 120, attempt: float = 2
) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
            with urllib.request.urlopen(req, timeout=attempt) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"{exc.code} {exc.read()[:300]!r}"
            time.sleep(0.2)
        except OSError as exc:
            last = exc
            time.sleep(0.2)
    raise SystemExit(f"server on {port} did not answer {path} with 200: {last}")


def call(port: int, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, headers=headers, method=method
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def wrk_script(config: Config, token: str) -> Path:
    """A wrk Lua script that sends ``config``'s request with the bearer token."""
    lines = [f'wrk.method = "{config.method}"', f'wrk.headers["Authorization"] = "Bearer {token}"']
    if config.body is not None:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f"wrk.body = {json.dumps(config.body)}")
    path = Path(tempfile.mkdtemp()) / f"{config.name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
NON_2XX: dict[str, int] = {}


def wrk(port: int, path: str, script: Path, duration: int, conns: int) -> tuple[float, float]:
    """(requests/s, p99 latency in ms) of one wrk run."""
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "-s", str(script)]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "1", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if bad:  # measured, but not what it claims to measure: said in the table, never hidden
        print(f"  !! {bad.group(1)} non-2xx responses from {path}", flush=True)
        NON_2XX[f"{port}{path}"] = NON_2XX.get(f"{port}{path}", 0) + int(bad.group(1))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    if not rps or not p99:
        raise SystemExit(out)
    return float(rps.group(1)), float(p99.group(1)) * _UNITS[p99.group(2)]


class Servers:
    """The bench servers, one process per configuration, pinned to CPU 0."""

    def __init__(self, configs: list[Config], env: dict[str, str]) -> None:
        self.configs = configs
        self.env = env
        self.procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}

    def start(self) -> None:
        for config, port in zip(self.configs, free_ports(len(self.configs)), strict=True):
            cmd = [sys.executable, str(HERE / "servers.py"), config.kind, str(port)]
            if shutil.which("taskset"):
                cmd = ["taskset", "-c", "0", *cmd]
            self.procs[config.name] = (
                subprocess.Popen(
                    cmd,
                    env={**self.env, **dict(config.env)},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ),
                port,
            )

    def port(self, name: str) -> int:
        return self.procs[name][1]

    def check_running(self) -> None:
        for name, (proc, _) in self.procs.items():
            if proc.poll() is not None:  # e.g. it could not bind: another server would answer
                raise SystemExit(f"the {name} server exited (code {proc.returncode})")

    def stop(self) -> None:
        for proc, _ in self.procs.values():
            proc.terminate()
        for proc, _ in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def prepare_services(
    servers: Servers, configs: list[Config], token: str
) -> tuple[str, dict[str, str]]:
    """Register and log in a customer (a token the customer service issued itself), then
    create what the measured routes read. Returns the token and the path substitutions."""
    subs: dict[str, str] = {}
    customer = next((c.name for c in configs if c.kind == "service:customer"), None)
    if customer is not None:
        port = servers.port(customer)
        user = f"bench{int(time.time() * 1000) % 10**9}"
        call(
            port,
            "POST",
            "/auth/register",
            {"username": user, "email": f"{user}@example.com", "password": "bench-password-1"},
        )
        token = call(
            port, "POST", "/auth/login", {"username": user, "password": "bench-password-1"}
        )["access_token"]
    for config in configs:
        if config.group != "services":
            continue
        port = servers.port(config.name)
        if config.name == "order-get":
            order = call(port, "POST", "/orders", json.loads(ORDER_BODY), token)
            subs["{order}"] = order["id"]
        if config.name == "cache-get":
            call(port, "PUT", "/cache/bench-key", {"value": {"hello": "world"}}, token)
    return token, subs


def bcrypt_flood(env: dict[str, str], rounds: int, duration: int) -> dict[str, Any]:
    """Issue item 4: /health p99 on the customer service while a login flood keeps its bcrypt
    pool busy, against its p99 when idle. One connection probes /health (closed loop); 8
    connections log in with a right password. The whole process is pinned to CPU 0, its
    bcrypt threads included: the loop and the hashing share one core, as in a 1-CPU pod."""
    config = Config("customer-flood", "service:customer", "/health", "flood", "login flood")
    servers = Servers([config], env)
    out: dict[str, Any] = {"idle_p99_ms": [], "flood_p99_ms": [], "logins_per_s": []}
    try:
        servers.start()
        port = servers.port(config.name)
        wait_up(port, "/health", {})
        user = f"flood{int(time.time() * 1000) % 10**9}"
        password = "bench-password-1"
        call(
            port,
            "POST",
            "/auth/register",
            {"username": user, "email": f"{user}@example.com", "password": password},
        )
        probe = Path(tempfile.mkdtemp()) / "probe.lua"
        probe.write_text('wrk.method = "GET"\n')
        login = Path(tempfile.mkdtemp()) / "login.lua"
        login.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(json.dumps({'username': user, 'password': password}))}\n"
            # a 429 (login throttle) would still hash nothing: count only what succeeds
        )
        for rnd in range(1, rounds + 1):
            _, idle = wrk(port, "/health", probe, duration, 1)
            cmd = [
                "wrk",
                "-t1",
                "-c8",
                "--timeout",
                "60s",
                f"-d{duration + 2}s",
                "-s",
                str(login),
                f"http://127.0.0.1:{port}/auth/login",
            ]
            if shutil.which("taskset"):
                cmd = ["taskset", "-c", "1", *cmd]
            flood = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            time.sleep(1)
            _, busy = wrk(port, "/health", probe, duration, 1)
            text, _ = flood.communicate(timeout=duration + 30)
            logins = re.search(r"Requests/sec:\s+([\d.]+)", text)
            rate = float(logins.group(1)) if logins else 0.0
            out["idle_p99_ms"].append(idle)
            out["flood_p99_ms"].append(busy)
            out["logins_per_s"].append(rate)
            print(
                f"[flood round {rnd}] /health p99 idle {idle:.2f} ms, during the login flood "
                f"{busy:.2f} ms ({rate:,.0f} logins/s)  load {loadavg()[0]:.2f}",
                flush=True,
            )
    finally:
        servers.stop()
    return out


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    import aiohttp

    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "platform": platform.platform(),
    }


def commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return (out.stdout.strip() or "unknown") + ("-dirty" if dirty else "")


def plot(results: dict[str, Any], out_dir: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots", flush=True)
        return []
    configs = results["configs"]
    names = list(configs)
    written = []
    for key, label, fname in (
        ("rps", "requests/s (median, min-max)", "bench-throughput.png"),
        ("p99_ms", "p99 latency, ms (median, min-max)", "bench-p99.png"),
    ):
        med = [statistics.median(configs[n][key]) for n in names]
        lo = [m - min(configs[n][key]) for m, n in zip(med, names, strict=True)]
        hi = [max(configs[n][key]) - m for m, n in zip(med, names, strict=True)]
        colours = [
            "#888888"
            if n == "bare"
            else "#d9822b"
            if n.startswith("fastapi")
            else "#2b6cd9"
            if configs[n]["group"] == "chassis"
            else "#3a9a4a"
            for n in names
        ]
        fig, ax = plt.subplots(figsize=(10, 4.5))
        ax.bar(names, med, yerr=[lo, hi], color=colours, capsize=3)
        ax.set_ylabel(label)
        ax.set_title(
            f"nox -s bench, {results['date']} {results['commit']}: "
            f"{results['rounds']} x {results['duration']} s, load {results['load_before'][0]:.2f}"
        )
        ax.tick_params(axis="x", rotation=30)
        for i, value in enumerate(med):
            ax.annotate(
                f"{value:,.0f}" if key == "rps" else f"{value:.1f}",
                (i, value),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        fig.tight_layout()
        path = out_dir / fname
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before each run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--uvloop", action="store_true", help="serve on uvloop")
    parser.add_argument("--quick", action="store_true", help="smoke check: 1 round of 2 s")
    parser.add_argument("--only", nargs="*", default=None, choices=list(CONFIGS))
    parser.add_argument("--group", nargs="*", default=None, choices=GROUPS)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
        help="the Redis the services use (its own database: the bench writes to it)",
    )
    parser.add_argument("--no-save", action="store_true", help="no results file, no plots")
    parser.add_argument("--no-flood", action="store_true", help="skip the bcrypt flood (item 4)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 2, 1
    names = args.only or [c.name for c in ALL if args.group is None or c.group in args.group]
    platform_groups = [
        g for g in PLATFORM_GROUPS if args.only is None and (args.group is None or g in args.group)
    ]
    configs = [CONFIGS[n] for n in names]
    if configs and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")

    from svc_core.testing import KeyPair, mint_token

    keys = KeyPair.generate()
    env = {
        **os.environ,
        "BENCH_PUBLIC_PEM": keys.public_pem,
        "BENCH_PRIVATE_PEM": keys.private_pem,
        "BENCH_REDIS_URL": args.redis_url,
        "BENCH_UVLOOP": "1" if args.uvloop else "0",
        "PYTHONPATH": str(HERE.parent),
    }
    load_before, up_before = loadavg(), uptime()
    print(f"machine: {up_before}", flush=True)
    servers = Servers(configs, env)
    results: dict[str, dict[str, Any]] = {
        c.name: {"group": c.group, "what": c.what, "rps": [], "p99_ms": []} for c in configs
    }
    started = time.monotonic()
    scripts: dict[str, Path] = {}
    paths: dict[str, str] = {}
    try:
        if configs:
            servers.start()
        for config in configs:  # up, before any token is minted (below)
            wait_up(servers.port(config.name), READY.get(config.kind, "/health"), {})
        # A process that finds no revocation epoch in Redis refuses tokens issued before the
        # current second (svc_core.auth.revocations): mint the token after every one started.
        time.sleep(1.1 if configs else 0)
        # 15 minutes (the default): the longest lifetime a service accepts
        token = mint_token(keys, issuer="svc-bench", sub="bench-user")
        service_token, subs = token, {}
        if any(c.group == "services" for c in configs):
            service_token, subs = prepare_services(servers, configs, token)
        for config in configs:
            tok = service_token if config.group == "services" else token
            path = config.path
            for old, new in subs.items():
                path = path.replace(old, new)
            paths[config.name] = path
            scripts[config.name] = wrk_script(config, tok)
            if config.method == "GET":
                wait_up(servers.port(config.name), path, {"Authorization": f"Bearer {tok}"})
            else:  # one request by hand: a refusal here shows its problem+json body
                try:
                    call(
                        servers.port(config.name),
                        config.method,
                        path,
                        json.loads(config.body or "null"),
                        tok,
                    )
                except urllib.error.HTTPError as exc:
                    raise SystemExit(f"{config.name}: {exc.code} {exc.read()[:300]!r}") from None
        time.sleep(0.5 if configs else 0)
        servers.check_running()
        total, done = args.rounds * len(configs), 0
        for rnd in range(1, args.rounds + 1):
            for config in configs:
                port = servers.port(config.name)
                if args.warmup:
                    wrk(
                        port,
                        paths[config.name],
                        scripts[config.name],
                        args.warmup,
                        args.connections,
                    )
                rps, p99 = wrk(
                    port, paths[config.name], scripts[config.name], args.duration, args.connections
                )
                results[config.name]["rps"].append(rps)
                results[config.name]["non_2xx"] = NON_2XX.get(f"{port}{paths[config.name]}", 0)
                results[config.name]["p99_ms"].append(p99)
                done += 1
                print(
                    f"[{done}/{total}, {time.monotonic() - started:.0f}s] round {rnd} "
                    f"{config.name:<15} {rps:>9,.0f} req/s  p99 {p99:6.2f} ms  "
                    f"load {loadavg()[0]:.2f}",
                    flush=True,
                )
    finally:
        servers.stop()
    flood: dict[str, Any] | None = None
    if not args.no_flood and args.only is None and (args.group is None or "services" in args.group):
        flood = bcrypt_flood(env, args.rounds, args.duration)
    platform: dict[str, Any] = {}
    for group in platform_groups:
        print(f"\n== {group} ({time.monotonic() - started:.0f}s) ==", flush=True)
        if group == "chat":
            platform[group] = groups.chat(env, args.quick, args.rounds, args.duration)
        elif group == "files":
            platform[group] = groups.files(env, args.quick, args.rounds)
        elif group == "events":
            platform[group] = groups.events(env, args.quick)
        else:
            platform[group] = groups.journey(env, args.quick)
    load_after, up_after = loadavg(), uptime()

    med = {n: statistics.median(r["rps"]) for n, r in results.items()}
    if results:
        print(f"\n{'config':<16}{'median req/s':>13}{'p99 ms':>9}   runs (req/s)   what")
    for name, r in results.items():
        runs = ", ".join(f"{v:,.0f}" for v in r["rps"])
        p99 = statistics.median(r["p99_ms"])
        bad = f"  !! {r['non_2xx']} non-2xx" if r.get("non_2xx") else ""
        print(f"{name:<16}{med[name]:>13,.0f}{p99:>9.2f}   {runs}   {r['what']}{bad}")
    checks = []
    for label, num, den, target in CHECKS:
        if num in med and den in med:
            ratio = med[num] / med[den]
            verdict = "" if target is None else "met" if ratio >= target else "NOT MET"
            checks.append(
                {"check": label, "ratio": round(ratio, 3), "target": target, "verdict": verdict}
            )
    if checks:
        print(f"\n{'ratio (medians, one run)':<46}{'measured':>9}   target")
        for c in checks:
            target = f">= {c['target']:.2f}x  {c['verdict']}" if c["target"] else "(informational)"
            print(f"{c['check']:<46}{c['ratio']:>8.2f}x   {target}")
    if flood is not None:
        idle = statistics.median(flood["idle_p99_ms"])
        busy = statistics.median(flood["flood_p99_ms"])
        ratio = busy / idle
        verdict = "met" if ratio <= 3 else "NOT MET"
        checks.append(
            {
                "check": "/health p99 during a login flood vs idle",
                "ratio": round(ratio, 3),
                "target": 3.0,
                "verdict": verdict,
                "lower_is_better": True,
            }
        )
        print(
            f"{'/health p99, login flood vs idle':<46}{ratio:>8.2f}x   <= 3.00x  {verdict}  "
            f"({idle:.2f} -> {busy:.2f} ms, "
            f"{statistics.median(flood['logins_per_s']):,.0f} logins/s)"
        )
    for group, result in platform.items():
        groups.table(group, result)
        checks.extend(result["checks"])
    platform_checks = [c for r in platform.values() for c in r["checks"]]
    if platform_checks:
        print(f"\n{'platform checks (medians, one run)':<58}{'measured':>10}   target")
        for c in platform_checks:
            unit = c.get("unit")
            value = f"{c['ratio']:,.1f} {unit}" if unit else f"{c['ratio']:.2f}x"
            sign = "<=" if c.get("lower_is_better") else ">="
            target = (
                f"{sign} {c['target']:g}{' ' + unit if unit else 'x'}  {c['verdict']}"
                if c["target"] is not None
                else "(informational)"
            )
            print(f"{c['check']:<58}{value:>10}   {target}")
    print(f"\nmachine after: {up_after}")
    if args.no_save:
        return
    now = dt.datetime.now(dt.UTC)
    record = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "command": "nox -s bench -- " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "uptime_before": up_before,
        "uptime_after": up_after,
        "load_before": load_before,
        "load_after": load_after,
        "rounds": args.rounds,
        "duration": args.duration,
        "connections": args.connections,
        "loop": "uvloop" if args.uvloop else "asyncio",
        "configs": results,
        "checks": checks,
        "bcrypt_flood": flood,
        **platform,
    }
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    out = (
        out_dir
        / f"{now.strftime('%Y-%m-%d')}-{record['commit']}{'-quick' if args.quick else ''}.json"
    )
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"results: {out.relative_to(ROOT)}")
    if not args.quick:
        plots = plot(record, ROOT / "docs") if results else []
        for path in plots + groups.plot(record, ROOT / "docs"):
            print(f"plot: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""The platform groups of ``nox -s bench`` (issue 16 items 5-8): chat, files, events, journey.

Each group starts its servers pinned to CPU 0 (bench/servers.py), runs its load generator
pinned to CPU 1 (bench/load.py, which prints progress on stderr and its measurements as JSON),
and returns what it measured plus its checks (the same shape as bench/run.py's). Configurations
are interleaved round by round where there are several (chat and its ceiling).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent

Check = dict[str, Any]


def pinned(cpu: int, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *cmd] if shutil.which("taskset") else cmd


def start(kind: str, port: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``bench/servers.py KIND PORT`` on CPU 0; its output discarded, as for the other servers."""
    return subprocess.Popen(
        pinned(0, [sys.executable, str(HERE / "servers.py"), kind, port]),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def up(proc: subprocess.Popen[bytes], port: int, path: str, timeout: float = 120) -> None:
    """Wait until ``proc`` answers ``path`` with 200; stop at once if it exited."""
    from run import wait_up

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{' '.join(map(str, proc.args))} exited ({proc.returncode})")
        try:
            wait_up(port, path, {}, timeout=2)
            return
        except SystemExit:
            if time.monotonic() > deadline:
                raise


def server_pid(proc: subprocess.Popen[bytes]) -> int:
    """The Python process's pid (taskset execs it, so it is the same pid)."""
    return proc.pid


def load(group: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """bench/load.py GROUP ARGS on CPU 1; its JSON answer."""
    cmd = pinned(1, [sys.executable, str(HERE / "load.py"), group, *args])
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench/load.py {group} failed (exit {done.returncode})")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def check(
    label: str, ratio: float, target: float | None, lower_is_better: bool = False, **extra: Any
) -> Check:
    if target is None:
        verdict = ""
    elif lower_is_better:
        verdict = "met" if ratio <= target else "NOT MET"
    else:
        verdict = "met" if ratio >= target else "NOT MET"
    out = {"check": label, "ratio": round(ratio, 3), "target": target, "verdict": verdict}
    if lower_is_better:
        out["lower_is_better"] = True
    return out | extra


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ---------------------------------------------------------------------------------------------


def chat(env: dict[str, str], quick: bool, rounds: int, duration: int) -> dict[str, Any]:
    """Item 5: two chat instances (one process, CPU 0) against two broadcaster instances."""
    from run import free_ports

    sizes = [100] if quick else [100, 1000]
    ports = free_ports(4)
    # Heartbeat pings every 300 s instead of 20: the counting sockets do not parse frames, so
    # they would not answer a ping; nothing else about the service changes.
    server_env = {**env, "CHAT_HEARTBEAT": "300"}
    chat_proc = start("pair:chat", f"{ports[0]},{ports[1]}", server_env)
    ceiling_proc = start("pair:broadcaster", f"{ports[2]},{ports[3]}", server_env)
    impls = {"chat": (chat_proc, ports[0:2]), "ceiling": (ceiling_proc, ports[2:4])}
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        for port in ports:
            up(chat_proc if port in ports[:2] else ceiling_proc, port, "/health")
        time.sleep(1.1)  # tokens minted after the revocation epoch exists (bench/run.py)
        for rnd in range(1, rounds + 1):
            for n in sizes:
                for impl, (proc, pair) in impls.items():
                    if proc.poll() is not None:
                        raise SystemExit(f"the {impl} servers exited ({proc.returncode})")
                    print(f"[chat round {rnd}] {impl}, {n} sockets", flush=True)
                    result = load(
                        "chat",
                        [
                            "--impl",
                            impl,
                            "--ports",
                            ",".join(map(str, pair)),
                            "--pid",
                            str(server_pid(proc)),
                            "--n",
                            str(n),
                            "--duration",
                            str(duration),
                            "--warmup",
                            "1",
                        ],
                        env,
                    )
                    result["round"] = rnd
                    runs.setdefault(f"{impl}-{n}", []).append(result)
    finally:
        stop(chat_proc, ceiling_proc)
    checks: list[Check] = []
    for n in sizes:
        mine, ceiling = runs.get(f"chat-{n}", []), runs.get(f"ceiling-{n}", [])
        if not mine or not ceiling or any("error" in r for r in mine + ceiling):
            continue
        rate = med([r["delivered_per_s"] for r in mine]) / med(
            [r["delivered_per_s"] for r in ceiling]
        )
        checks.append(check(f"chat {n} sockets: delivered msg/s vs ceiling", rate, 0.5))
        for q in ("p50", "p99"):
            ratio = med([r[f"{q}_ms"] for r in mine]) / med([r[f"{q}_ms"] for r in ceiling])
            checks.append(
                check(f"chat {n} sockets: {q} latency vs ceiling", ratio, 2.0, lower_is_better=True)
            )
    biggest = max(sizes)
    # the first round's figure: later rounds reuse memory the earlier sockets left allocated
    mem = [r["kib_per_socket"] for r in runs.get(f"chat-{biggest}", []) if "kib_per_socket" in r]
    if mem:
        checks.append(
            check(
                f"chat RSS per idle socket, KiB ({biggest} sockets)",
                mem[0],
                30.0,
                lower_is_better=True,
                unit="KiB",
            )
        )
    return {"runs": runs, "sizes": sizes, "duration": duration, "checks": checks}


# ---------------------------------------------------------------------------------------------

MIB = 1024 * 1024


def files(env: dict[str, str], quick: bool, rounds: int) -> dict[str, Any]:
    """Item 6: the file service (local backend) on a directory of this disk, against dd."""
    from run import free_ports

    sizes = [1, 100] if quick else [1, 100, 1024]
    root = Path(tempfile.mkdtemp(prefix="bench-files-"))
    df = subprocess.run(["df", "-h", str(root)], capture_output=True, text=True).stdout.strip()
    print(f"[files] storage {root}:\n{df}", flush=True)
    free = shutil.disk_usage(root).free
    if free < 3 * max(sizes) * MIB + 2 * 1024 * MIB:
        sizes = [s for s in sizes if 3 * s * MIB + 2 * 1024 * MIB <= free]
        print(f"[files] not enough free space for every size; measuring {sizes} MiB", flush=True)
    (port,) = free_ports(1)
    server_env = {
        **env,
        "FILES_LOCAL_ROOT": str(root),
        # above the largest size measured (the default limit is 50 MiB)
        "FILES_MAX_SIZE": str(max(sizes) * MIB + MIB),
    }
    proc = start("service:files", str(port), server_env)
    try:
        up(proc, port, "/health")
        time.sleep(1.1)
        result = load(
            "files",
            [
                "--port",
                str(port),
                "--pid",
                str(server_pid(proc)),
                "--root",
                str(root),
                "--sizes",
                ",".join(map(str, sizes)),
                "--rounds",
                str(rounds),
            ],
            env,
        )
    finally:
        stop(proc)
        shutil.rmtree(root, ignore_errors=True)
    print(f"[files] removed {root}", flush=True)
    checks: list[Check] = []
    for size, runs in result["sizes"].items():

        def m(key: str, runs: list[dict[str, Any]] = runs) -> float:
            return med([r[key] for r in runs])

        checks.append(
            check(f"files {size} MiB: upload vs dd", m("upload_mb_s") / m("dd_write_mb_s"), 0.5)
        )
        checks.append(
            check(
                f"files {size} MiB: tus upload (5 MiB chunks) vs dd",
                m("tus_upload_mb_s") / m("dd_write_mb_s"),
                0.5,
            )
        )
        checks.append(
            check(
                f"files {size} MiB: download vs raw read",
                m("download_mb_s") / m("raw_read_mb_s"),
                0.8,
            )
        )
    if "1024" in result["sizes"]:
        growth = max(r["upload_rss_growth_mib"] for r in result["sizes"]["1024"])
        checks.append(
            check("files RSS growth during the 1 GiB upload, MiB", growth, 64.0, True, unit="MiB")
        )
    result["df"] = df
    result["checks"] = checks
    return result


# ---------------------------------------------------------------------------------------------


def events(env: dict[str, str], quick: bool) -> dict[str, Any]:
    """Item 7: payment succeeded -> order paid, at 50 payments/s, real Redis streams."""
    from run import free_ports

    order_port, payment_port = free_ports(2)
    order = start("service:order", str(order_port), env)
    payment = start(
        "service:payment",
        str(payment_port),
        {**env, "ORDER_SERVICE_URL": f"http://127.0.0.1:{order_port}"},
    )
    duration = 4 if quick else 20
    try:
        up(order, order_port, "/health")
        up(payment, payment_port, "/health")
        time.sleep(1.1)
        print(f"[events] 50 payments/s for {duration} s", flush=True)
        result = load(
            "events",
            [
                "--order",
                str(order_port),
                "--payment",
                str(payment_port),
                "--rate",
                "50",
                "--duration",
                str(duration),
            ],
            env,
        )
    finally:
        stop(order, payment)
    p99 = result["paid_after_response_p99_ms"]
    result["checks"] = [
        check("payment -> order paid p99 (ms after the response)", p99, 100.0, True, unit="ms"),
        check("payment -> order paid p99 within api.md's 2 s", p99, 2000.0, True, unit="ms"),
    ]
    return result


# ---------------------------------------------------------------------------------------------


def journey(env: dict[str, str], quick: bool) -> dict[str, Any]:
    """Item 8 (informational): virtual users through the local gateway, the whole stack in one
    process on CPU 0."""
    from run import free_ports

    (port,) = free_ports(1)
    work = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    proc = start("stack", str(port), {**env, "BENCH_STACK_DIR": str(work)})
    vus, duration = (8, 5) if quick else (32, 30)
    try:
        up(proc, port, "/auth/jwks.json", timeout=180)
        print(f"[journey] {vus} virtual users for {duration} s through the gateway", flush=True)
        result = load(
            "journey",
            [
                "--gateway",
                str(port),
                "--pid",
                str(server_pid(proc)),
                "--vus",
                str(vus),
                "--duration",
                str(duration),
                "--warmup",
                "2" if quick else "5",
            ],
            env,
        )
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    result["checks"] = [
        check(
            "journey through the gateway: req/s per core (informational)",
            result["rps_per_core"] or 0.0,
            None,
            unit="req/s",
        )
    ]
    return result


# ---------------------------------------------------------------------------------------------


def table(name: str, result: dict[str, Any]) -> None:
    """The group's rows on stdout."""
    if name == "chat":
        print(
            f"\n{'chat':<16}{'sockets':>8}{'delivered/s':>13}{'sent/s':>9}{'p50 ms':>9}"
            f"{'p99 ms':>9}{'KiB/sock¹':>10}{'srv cpu':>9}{'gen cpu':>9}  runs (delivered/s)"
        )
        for key, runs in result["runs"].items():
            impl, n = key.rsplit("-", 1)
            if any("error" in r for r in runs):
                print(f"{impl:<16}{n:>8}  {runs[0]['error']}")
                continue
            print(
                f"{impl:<16}{n:>8}{med([r['delivered_per_s'] for r in runs]):>13,.0f}"
                f"{med([r['sent_per_s'] for r in runs]):>9,.0f}"
                f"{med([r['p50_ms'] for r in runs]):>9.1f}{med([r['p99_ms'] for r in runs]):>9.1f}"
                f"{runs[0].get('kib_per_socket', float('nan')):>10.1f}"
                f"{med([r['server_cpu'] for r in runs]):>9.2f}"
                f"{med([r['generator_cpu'] for r in runs]):>9.2f}  "
                + ", ".join(f"{r['delivered_per_s']:,.0f}" for r in runs)
            )
        print("¹ RSS growth per idle joined socket, first round (later rounds reuse freed memory)")
    elif name == "files":
        print(
            f"\n{'files (MB/s)':<14}{'upload':>8}{'dd':>8}{'tus':>8}{'download':>10}"
            f"{'raw read':>10}{'RSS +MiB':>10}{'tus +MiB':>10}"
        )
        for size, runs in result["sizes"].items():

            def m(key: str, runs: list[dict[str, Any]] = runs) -> float:
                return med([r[key] for r in runs])

            print(
                f"{size + ' MiB':<14}{m('upload_mb_s'):>8.0f}{m('dd_write_mb_s'):>8.0f}"
                f"{m('tus_upload_mb_s'):>8.0f}{m('download_mb_s'):>10.0f}{m('raw_read_mb_s'):>10.0f}"
                f"{max(r['upload_rss_growth_mib'] for r in runs):>10.1f}"
                f"{max(r['tus_rss_growth_mib'] for r in runs):>10.1f}"
            )
    elif name == "events":
        r = result
        print(
            f"\nevents: {r['payments']} payments at {r['rate_per_s']}/s; order paid after the "
            f"payment's response p50 {r['paid_after_response_p50_ms']} ms, p99 "
            f"{r['paid_after_response_p99_ms']} ms ({r['paid_before_response']} paid before the "
            f"response arrived); after the payment's created_at p50 "
            f"{r['paid_after_created_p50_ms']} ms, p99 {r['paid_after_created_p99_ms']} ms; "
            f"POST /payments p50 {r['payment_response_p50_ms']} ms, p99 "
            f"{r['payment_response_p99_ms']} ms; not paid: {r['not_paid']}"
        )
    elif name == "journey":
        r = result
        print(
            f"\njourney: {r['vus']} users, {r['journeys']} journeys, {r['rps']:,.0f} req/s "
            f"through the gateway, stack used {r['stack_cores_used']} cores -> "
            f"{r['rps_per_core']} req/s per core; failures {r['failures'] or 'none'}"
        )
        print(f"{'route':<34}{'share':>7}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}")
        for route, s in r["routes"].items():
            print(
                f"{route:<34}{s['share'] * 100:>6.1f}%{s['rps']:>8,.0f}{s['p50_ms']:>8.1f}"
                f"{s['p99_ms']:>8.1f}"
            )


def plot(record: dict[str, Any], out_dir: Path) -> list[Path]:
    """docs/bench-chat-latency.png and docs/bench-files-throughput.png, when measured."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    title = f"nox -s bench, {record['date']} {record['commit']}"
    chat_result = record.get("chat")
    if chat_result:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for key, runs in chat_result["runs"].items():
            values = sorted(v for r in runs for v in r.get("latency_sample_ms", []))
            if not values:
                continue
            ys = [(i + 1) / len(values) for i in range(len(values))]
            ax.plot(values, ys, label=key.replace("-", ", ") + " sockets")
        ax.set_xscale("log")
        ax.set_xlabel("delivery latency, ms (log)")
        ax.set_ylabel("fraction of deliveries")
        ax.set_title(f"chat delivery latency (CDF): {title}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out_dir / "bench-chat-latency.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    files_result = record.get("files")
    if files_result:
        sizes = list(files_result["sizes"])
        series = [
            ("upload_mb_s", "POST /files"),
            ("tus_upload_mb_s", "tus, 5 MiB chunks"),
            ("dd_write_mb_s", "dd write (fdatasync)"),
            ("download_mb_s", "GET content"),
            ("raw_read_mb_s", "raw read (dd)"),
        ]
        fig, ax = plt.subplots(figsize=(9, 4.5))
        width = 0.16
        for i, (key, label) in enumerate(series):
            values = [med([r[key] for r in files_result["sizes"][s]]) for s in sizes]
            xs = [j + (i - 2) * width for j in range(len(sizes))]
            ax.bar(xs, values, width, label=label)
        ax.set_xticks(range(len(sizes)), [f"{s} MiB" for s in sizes])
        ax.set_ylabel("MB/s (median)")
        ax.set_title(f"file throughput by size: {title}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / "bench-files-throughput.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written

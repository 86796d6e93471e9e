"""A results file as Markdown tables (for docs/performance.md): ``python bench/report.py FILE``."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def platform(record: dict[str, Any]) -> None:
    """The platform groups (issue 16 items 5-8), when the file has them."""
    chat = record.get("chat")
    if chat:
        print(
            "\n| chat | sockets | delivered msg/s | sent msg/s | p50 ms | p99 ms | RSS KiB per "
            "idle socket (first round) | server CPU | generator CPU | runs (delivered/s) |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for key, runs in chat["runs"].items():
            impl, n = key.rsplit("-", 1)
            if any("error" in r for r in runs):
                print(f"| {impl} | {n} | {runs[0]['error']} | | | | | | | |")
                continue

            def m(k: str, runs: list[dict[str, Any]] = runs) -> float:
                return med([r[k] for r in runs])

            rates = ", ".join(f"{r['delivered_per_s']:,.0f}" for r in runs)
            print(
                f"| {impl} | {n} | {m('delivered_per_s'):,.0f} | {m('sent_per_s'):,.0f} | "
                f"{m('p50_ms'):.1f} | {m('p99_ms'):.1f} | {runs[0]['kib_per_socket']:.1f} | "
                f"{m('server_cpu'):.2f} | {m('generator_cpu'):.2f} | {rates} |"
            )
    files = record.get("files")
    if files:
        print(
            "\n| file size | upload MB/s | dd write MB/s | tus MB/s | download MB/s | raw read "
            "MB/s | RSS growth, upload (MiB) | RSS growth, tus (MiB) |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for size, runs in files["sizes"].items():

            def f(k: str, runs: list[dict[str, Any]] = runs) -> float:
                return med([r[k] for r in runs])

            print(
                f"| {size} MiB | {f('upload_mb_s'):.0f} | {f('dd_write_mb_s'):.0f} | "
                f"{f('tus_upload_mb_s'):.0f} | {f('download_mb_s'):.0f} | {f('raw_read_mb_s'):.0f}"
                f" | {max(r['upload_rss_growth_mib'] for r in runs):.1f} | "
                f"{max(r['tus_rss_growth_mib'] for r in runs):.1f} |"
            )
    events = record.get("events")
    if events:
        e = events
        print(
            f"\nevents: {e['payments']} payments at {e['rate_per_s']}/s; the order seen `paid` "
            f"(its `updated_at`) after the payment's response: p50 "
            f"{e['paid_after_response_p50_ms']} ms, p99 {e['paid_after_response_p99_ms']} ms "
            f"({e['paid_before_response']} before the response arrived); after the payment's "
            f"`created_at`: p50 {e['paid_after_created_p50_ms']} ms, p99 "
            f"{e['paid_after_created_p99_ms']} ms; POST /payments p50 "
            f"{e['payment_response_p50_ms']} ms, p99 {e['payment_response_p99_ms']} ms; "
            f"not paid: {e['not_paid']}"
        )
    journey = record.get("journey")
    if journey:
        j = journey
        print(
            f"\njourney: {j['vus']} virtual users for {j['duration_s']} s, {j['journeys']} "
            f"journeys, {j['rps']:,.0f} req/s through the gateway; the stack (one process) used "
            f"{j['stack_cores_used']} cores: {j['rps_per_core']:,.0f} req/s per core; failures: "
            f"{j['failures'] or 'none'}\n"
        )
        print("| route | share | req/s | p50 ms | p99 ms |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for route, r in j["routes"].items():
            print(
                f"| {route} | {r['share'] * 100:.1f} % | {r['rps']:,.0f} | {r['p50_ms']:.1f} | "
                f"{r['p99_ms']:.1f} |"
            )


def main() -> None:
    record = json.loads(Path(sys.argv[1]).read_text())
    configs = record["configs"]
    bare = statistics.median(configs["bare"]["rps"]) if "bare" in configs else None
    print(f"Run {record['date']}, commit {record['commit']}, `{record['command']}`  ")
    print(f"Machine: {record['machine']['cpu']}, {record['machine']['cpus']} vCPU, Python ")
    print(f"{record['machine']['python']}, aiohttp {record['machine']['aiohttp']}, ")
    print(f"{record['loop']} loop; {record['rounds']} rounds x {record['duration']} s, ")
    print(f"wrk -t1 -c{record['connections']}.  ")
    print(f"Load before: `{record['uptime_before']}`  ")
    print(f"Load after: `{record['uptime_after']}`\n")
    if configs:
        print("| config | what | median req/s | x bare | median p99 ms | runs (req/s) |")
        print("| --- | --- | ---: | ---: | ---: | --- |")
    for name, r in configs.items():
        med = statistics.median(r["rps"])
        ratio = f"{med / bare:.2f}" if bare else ""
        runs = ", ".join(f"{v:,.0f}" for v in r["rps"])
        bad = f" ({r['non_2xx']} non-2xx!)" if r.get("non_2xx") else ""
        p99 = statistics.median(r["p99_ms"])
        print(f"| {name} | {r['what']}{bad} | {med:,.0f} | {ratio} | {p99:.2f} | {runs} |")
    print("\n| check | measured | target | verdict |")
    print("| --- | ---: | --- | --- |")
    for c in record["checks"]:
        sign = "<=" if c.get("lower_is_better") else ">="
        unit = c.get("unit")
        value = f"{c['ratio']:,.1f} {unit}" if unit else f"{c['ratio']:.2f}x"
        target = (
            f"{sign} {c['target']:g}{' ' + unit if unit else 'x'}"
            if c["target"] is not None
            else "informational"
        )
        print(f"| {c['check']} | {value} | {target} | {c['verdict'] or '-'} |")
    flood = record.get("bcrypt_flood")
    if flood:
        print(
            f"\nbcrypt flood: /health p99 idle {flood['idle_p99_ms']} ms, during the flood "
            f"{flood['flood_p99_ms']} ms, logins/s {flood['logins_per_s']}"
        )
    platform(record)


if __name__ == "__main__":
    main()

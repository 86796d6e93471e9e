"""The load generators of the platform groups (issue 16 items 5-8), one per subcommand.

``bench/run.py`` starts the servers pinned to CPU 0 and runs this script pinned to CPU 1
(``taskset -c 1 python bench/load.py GROUP --options``); it prints progress on stderr and one
JSON object, its measurements, on stdout. Not meant to be run by hand, though it can be.

    chat     N raw WebSocket clients joined to one room, half on each instance; senders post in
             a closed loop (one message in flight each, at most 8/s: under the chat's 10/s per
             socket), receivers count delivered frames; latency from the time in the body
    files    multipart upload, download, tus upload in 5 MiB chunks, dd and a raw read
    events   payments at a fixed rate; the order's ``updated_at`` (paid) against the time the
             payment's response arrived
    journey  virtual users through the gateway: register, login, orders, pay, cache, chat
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

MIB = 1024 * 1024
ISSUER = "svc-bench"


def progress(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def raise_nofile() -> int:
    """RLIMIT_NOFILE's soft limit raised to the hard one; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (its threads included), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def token_for(sub: str, username: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from svc_core.testing import KeyPair, mint_token

    private = serialization.load_pem_private_key(
        os.environ["BENCH_PRIVATE_PEM"].encode(), password=None
    )
    assert isinstance(private, rsa.RSAPrivateKey)
    return mint_token(KeyPair(private), issuer=ISSUER, sub=sub, username=username)


# ---------------------------------------------------------------------------------------------
# chat: a raw WebSocket client (RFC 6455), so that 1,000 sockets cost the generator little


MARK = b'{"type": "message"'  # the start of every delivered message frame (json.dumps)


def ws_frame(text: str, opcode: int = 1) -> bytes:
    """A client frame; the mask key is zero (allowed: the payload XORed with it is itself)."""
    data = text.encode()
    n = len(data)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    else:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    return head + b"\0\0\0\0" + data


class RawSocket(asyncio.Protocol):
    """One WebSocket. In parse mode every text frame goes to ``on_text``; in count mode (after
    ``joined``) the bytes are only scanned for :data:`MARK` (no per-frame work in Python)."""

    def __init__(self, parse: bool, on_text: Callable[[bytes], None] | None = None) -> None:
        self.keep_parsing = parse
        self.parse = True
        self.on_text = on_text
        self.buf = b""
        self.tail = b""
        self.count = 0
        self.head = b""
        self.upgraded = asyncio.get_running_loop().create_future()
        self.joined = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        for fut in (self.upgraded, self.joined):
            if not fut.done():
                fut.set_exception(ConnectionError("closed"))

    def send(self, text: str) -> None:
        assert self.transport is not None
        self.transport.write(ws_frame(text))

    def data_received(self, data: bytes) -> None:
        if not self.upgraded.done():
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            head, data = self.head.split(b"\r\n\r\n", 1)
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                self.upgraded.set_exception(ConnectionError(head[:200].decode(errors="replace")))
                return
            self.upgraded.set_result(None)
        if not self.parse:
            chunk = self.tail + data
            self.count += chunk.count(MARK)
            self.tail = chunk[-(len(MARK) - 1) :]
            return
        self.buf += data
        self._frames()

    def _frames(self) -> None:
        buf = self.buf
        while len(buf) >= 2:
            opcode, n, i = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, i = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, i = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < i + n:
                break
            payload, buf = buf[i : i + n], buf[i + n :]
            if opcode == 1:
                if payload.startswith(MARK):
                    self.count += 1
                    if self.on_text is not None:
                        self.on_text(payload)
                elif not self.joined.done() and payload.startswith(b'{"type": "joined"'):
                    self.joined.set_result(None)
                    if not self.keep_parsing:  # the rest of the stream is only counted
                        self.parse = False
                        rest = buf
                        self.buf = b""
                        self.count += rest.count(MARK)
                        self.tail = rest[-(len(MARK) - 1) :]
                        return
            elif opcode == 9 and self.transport is not None:  # ping: pong with its payload
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
        self.buf = buf


async def open_socket(
    port: int, token: str, room: str, parse: bool, on_text: Callable[[bytes], None] | None = None
) -> RawSocket:
    loop = asyncio.get_running_loop()
    _, sock = await loop.create_connection(lambda: RawSocket(parse, on_text), "127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    assert sock.transport is not None
    sock.transport.write(
        (
            f"GET /chat/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    await asyncio.wait_for(sock.upgraded, 30)
    sock.send(json.dumps({"type": "join", "room_id": room}))
    await asyncio.wait_for(sock.joined, 30)
    return sock


async def chat(args: argparse.Namespace) -> dict[str, Any]:
    limit = raise_nofile()
    ports = [int(p) for p in args.ports.split(",")]
    users = [(f"bench-user-{i}", f"bench{i}") for i in range(args.users)]
    tokens = [token_for(sub, name) for sub, name in users]
    room = "bench-room"
    if args.impl == "chat":
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://127.0.0.1:{ports[0]}/chat/rooms",
                json={"name": "bench"},
                headers={"Authorization": f"Bearer {tokens[0]}"},
            ) as response,
        ):
            body = await response.json()
            if response.status != 201:
                raise SystemExit(f"POST /chat/rooms: {response.status} {body}")
            room = body["id"]
    out: dict[str, Any] = {"impl": args.impl, "sockets": args.n, "nofile": limit}
    if args.n + 64 > limit:
        out["error"] = f"RLIMIT_NOFILE {limit} is below {args.n} sockets"
        return out
    senders = min(args.senders, args.n)
    latencies: list[float] = []
    own: list[asyncio.Event] = [asyncio.Event() for _ in range(senders)]
    waiting: list[int] = [-1] * senders
    recording = [False]

    def receiver(index: int) -> Callable[[bytes], None]:
        def on_text(payload: bytes) -> None:
            body = json.loads(payload)["message"]["body"]
            sender, seq, sent = body.split(" ")
            if recording[0]:
                latencies.append((time.perf_counter() - float(sent)) * 1000)
            if int(sender) == index and int(seq) == waiting[index]:
                own[index].set()

        return on_text

    rss_before = rss_kib(args.pid)
    sockets: list[RawSocket] = []
    gate = asyncio.Semaphore(32)

    async def connect(i: int) -> RawSocket:
        async with gate:
            parse = i < senders
            return await open_socket(
                ports[i % 2],
                tokens[i % len(tokens)],
                room,
                parse,
                receiver(i) if parse else None,
            )

    started = time.monotonic()
    sockets = list(await asyncio.gather(*(connect(i) for i in range(args.n))))
    progress(
        f"{args.impl}: {args.n} sockets joined in {time.monotonic() - started:.1f}s "
        f"(RLIMIT_NOFILE {limit})"
    )
    await asyncio.sleep(1.5)  # presence settles, buffers are allocated
    rss_after = rss_kib(args.pid)
    out |= {
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "kib_per_socket": round((rss_after - rss_before) / args.n, 2),
    }
    sent = [0]
    stop = [False]

    async def sender(index: int) -> None:
        sock, seq = sockets[index], 0
        next_at = time.perf_counter() + random.random() * 0.125
        while not stop[0]:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            seq += 1
            waiting[index] = seq
            own[index].clear()
            body = f"{index} {seq} {time.perf_counter()}"
            sock.send(
                json.dumps(
                    {"type": "message", "room_id": room, "body": body, "client_id": f"c{seq}"}
                )
            )
            if recording[0]:
                sent[0] += 1
            next_at = time.perf_counter() + 0.125  # <= 8/s: the chat allows 10 per second
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(own[index].wait(), 10)

    tasks = [asyncio.create_task(sender(i)) for i in range(senders)]
    await asyncio.sleep(args.warmup)
    recording[0] = True
    count0 = sum(s.count for s in sockets)
    cpu0, gcpu0, t0 = cpu_seconds(args.pid), sum(os.times()[:2]), time.perf_counter()
    await asyncio.sleep(args.duration)
    elapsed = time.perf_counter() - t0
    count1 = sum(s.count for s in sockets)
    cpu1, gcpu1 = cpu_seconds(args.pid), sum(os.times()[:2])
    recording[0] = False
    stop[0] = True
    await asyncio.sleep(0.3)
    for task in tasks:
        task.cancel()
    lost = sum(1 for s in sockets if s.lost)
    for sock in sockets:
        if sock.transport is not None:
            sock.transport.close()
    delivered = (count1 - count0) / elapsed
    sample = random.sample(latencies, min(len(latencies), 4000))
    out |= {
        "senders": senders,
        "sent_per_s": round(sent[0] / elapsed, 1),
        "delivered_per_s": round(delivered, 1),
        "p50_ms": round(pct(latencies, 0.50), 2),
        "p99_ms": round(pct(latencies, 0.99), 2),
        "latency_samples": len(latencies),
        "latency_sample_ms": [round(v, 2) for v in sample],
        "server_cpu": round((cpu1 - cpu0) / elapsed, 2),
        "generator_cpu": round((gcpu1 - gcpu0) / elapsed, 2),
        "sockets_lost": lost,
    }
    progress(
        f"{args.impl} n={args.n}: {delivered:,.0f} delivered/s ({out['sent_per_s']} sent/s), "
        f"p50 {out['p50_ms']} ms p99 {out['p99_ms']} ms, {out['kib_per_socket']} KiB/socket, "
        f"server cpu {out['server_cpu']}, generator cpu {out['generator_cpu']}, lost {lost}"
    )
    return out


# ---------------------------------------------------------------------------------------------
# files

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4


def block() -> bytes:
    """1 MiB of pseudo-random bytes (made once; the stream repeats it)."""
    return random.Random(16).randbytes(MIB)


async def generated(size: int, data: bytes) -> AsyncIterator[bytes]:
    """``size`` bytes starting with a PNG signature, from memory, never stored."""
    first = PNG + data[len(PNG) :]
    sent = 0
    while sent < size:
        piece = (first if sent == 0 else data)[: size - sent]
        sent += len(piece)
        yield piece


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def evict(path: Path) -> None:
    """Drop this one file's pages from the page cache (no machine-wide drop_caches)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


class RssSampler:
    """VmRSS of ``pid`` every 20 ms while running."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = rss_kib(pid)
        self.peak = self.before
        self.task = asyncio.create_task(self.run())

    async def run(self) -> None:
        while True:
            self.peak = max(self.peak, rss_kib(self.pid))
            await asyncio.sleep(0.02)

    async def stop(self) -> dict[str, float]:
        self.task.cancel()
        self.peak = max(self.peak, rss_kib(self.pid))
        return {
            "rss_before_mib": round(self.before / 1024, 1),
            "rss_peak_mib": round(self.peak / 1024, 1),
            "rss_growth_mib": round((self.peak - self.before) / 1024, 1),
        }


def stored(root: Path, file_id: str) -> Path:
    return root / "objects" / file_id[-2:] / file_id[-4:-2] / file_id


async def files(args: argparse.Namespace) -> dict[str, Any]:
    base = f"http://127.0.0.1:{args.port}"
    root = Path(args.root)
    auth = {"Authorization": f"Bearer {token_for('bench-files', 'benchfiles')}"}
    data = block()
    runs: dict[str, list[dict[str, Any]]] = {}
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for rnd in range(1, args.rounds + 1):
            for mib in [int(s) for s in args.sizes.split(",")]:
                size = mib * MIB
                free = shutil.disk_usage(root).free
                if free < 3 * size + 2 * 1024 * MIB:
                    progress(f"skipping {mib} MiB: {free / MIB:,.0f} MiB free on {root}")
                    continue
                run: dict[str, Any] = {"round": rnd}
                # dd: the same number of bytes to the same disk, flushed (conv=fdatasync)
                target = root / "dd.bin"
                seconds = timed(
                    [
                        "dd",
                        "if=/dev/zero",
                        f"of={target}",
                        "bs=1M",
                        f"count={mib}",
                        "conv=fdatasync",
                        "status=none",
                    ]
                )
                target.unlink()
                run["dd_write_mb_s"] = size / seconds / 1e6
                # multipart POST /files, streamed from a generator
                writer = aiohttp.MultipartWriter("form-data")
                part = writer.append(generated(size, data), {"Content-Type": "image/png"})
                part.set_content_disposition("form-data", name="file", filename="bench.png")
                sampler = RssSampler(args.pid)
                t0 = time.perf_counter()
                async with http.post(f"{base}/files", data=writer, headers=auth) as response:
                    meta = await response.json()
                    if response.status != 201:
                        raise SystemExit(f"POST /files {mib} MiB: {response.status} {meta}")
                run["upload_mb_s"] = size / (time.perf_counter() - t0) / 1e6
                run |= {f"upload_{k}": v for k, v in (await sampler.stop()).items()}
                path = stored(root, meta["id"])
                # raw read of the stored file, then the download, each from disk
                evict(path)
                run["raw_read_mb_s"] = (
                    size / timed(["dd", f"if={path}", "of=/dev/null", "bs=1M", "status=none"]) / 1e6
                )
                evict(path)
                # curl, like dd, is C: the ratio is the service's, not a Python client's
                curl = subprocess.run(
                    [
                        "curl",
                        "-sS",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{size_download} %{time_total}",
                        "-H",
                        f"Authorization: {auth['Authorization']}",
                        f"{base}/files/{meta['id']}/content",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
                if int(curl[0]) != size:
                    raise SystemExit(f"download {mib} MiB: got {curl[0]} bytes")
                run["download_mb_s"] = size / float(curl[1]) / 1e6
                # tus: creation, then PATCH in 5 MiB chunks
                tus = {**auth, "Tus-Resumable": "1.0.0"}
                sampler = RssSampler(args.pid)
                t0 = time.perf_counter()
                name = base64.b64encode(b"bench.png").decode()
                async with http.post(
                    f"{base}/files/uploads",
                    headers={
                        **tus,
                        "Upload-Length": str(size),
                        "Upload-Metadata": f"filename {name}",
                    },
                ) as response:
                    if response.status != 201:
                        raise SystemExit(f"tus creation: {response.status} {await response.text()}")
                    location = response.headers["Location"]
                offset, stream = 0, generated(size, data)
                pending = b""
                async for piece in stream:
                    pending += piece
                    while len(pending) >= 5 * MIB or (pending and offset + len(pending) == size):
                        chunk, pending = pending[: 5 * MIB], pending[5 * MIB :]
                        async with http.patch(
                            f"{base}{location}",
                            data=chunk,
                            headers={
                                **tus,
                                "Upload-Offset": str(offset),
                                "Content-Type": "application/offset+octet-stream",
                            },
                        ) as response:
                            if response.status != 204:
                                text = await response.text()
                                raise SystemExit(f"tus PATCH: {response.status} {text}")
                        offset += len(chunk)
                run["tus_upload_mb_s"] = size / (time.perf_counter() - t0) / 1e6
                run |= {f"tus_{k}": v for k, v in (await sampler.stop()).items()}
                tus_id = location.rstrip("/").rsplit("/", 1)[1]
                for file_id in (meta["id"], tus_id):
                    async with http.delete(f"{base}/files/{file_id}", headers=auth) as response:
                        if response.status != 204:
                            progress(f"DELETE /files/{file_id}: {response.status}")
                runs.setdefault(str(mib), []).append(run)
                progress(
                    f"[files round {rnd}] {mib} MiB: upload {run['upload_mb_s']:.0f} MB/s "
                    f"(dd {run['dd_write_mb_s']:.0f}), download {run['download_mb_s']:.0f} MB/s "
                    f"(raw read {run['raw_read_mb_s']:.0f}), tus {run['tus_upload_mb_s']:.0f} "
                    f"MB/s; RSS +{run['upload_rss_growth_mib']} MiB (upload), "
                    f"+{run['tus_rss_growth_mib']} MiB (tus)"
                )
    return {"sizes": runs}


# ---------------------------------------------------------------------------------------------
# events: payment succeeded -> order paid

ORDER = {
    "currency": "EUR",
    "items": [{"sku": "sku-1", "name": "Widget", "quantity": 1, "unit_price": 1250}],
}
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}


def parse_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


async def events(args: argparse.Namespace) -> dict[str, Any]:
    orders_url = f"http://127.0.0.1:{args.order}"
    payments_url = f"http://127.0.0.1:{args.payment}"
    auth = {"Authorization": f"Bearer {token_for('bench-payer', 'benchpayer')}"}
    total = int(args.rate * args.duration)
    gate = asyncio.Semaphore(16)
    async with aiohttp.ClientSession() as http:

        async def create() -> str:
            async with gate, http.post(f"{orders_url}/orders", json=ORDER, headers=auth) as r:
                return str((await r.json())["id"])

        ids = list(await asyncio.gather(*(create() for _ in range(total))))
        progress(f"events: {total} orders created; paying {args.rate}/s for {args.duration}s")
        results: list[dict[str, Any]] = []
        t0 = time.perf_counter()

        async def pay(i: int, order_id: str) -> None:
            await asyncio.sleep(max(0.0, t0 + i / args.rate - time.perf_counter()))
            sent = time.time()
            headers = {**auth, "Idempotency-Key": uuid.uuid4().hex}
            body = {"order_id": order_id, "card": CARD}
            async with http.post(f"{payments_url}/payments", json=body, headers=headers) as r:
                payment = await r.json()
                answered = time.time()
            results.append(
                {
                    "order": order_id,
                    "status": r.status,
                    "sent": sent,
                    "answered": answered,
                    "created": parse_time(payment["created_at"]) if r.status == 201 else None,
                }
            )

        await asyncio.gather(*(pay(i, oid) for i, oid in enumerate(ids)))
        elapsed = time.perf_counter() - t0
        await asyncio.sleep(2.5)  # api.md: paid within 2 s; then each order is read once

        async def read(order_id: str) -> dict[str, Any]:
            async with gate, http.get(f"{orders_url}/orders/{order_id}", headers=auth) as r:
                return dict(await r.json())

        orders = {o["id"]: o for o in await asyncio.gather(*(read(i) for i in ids))}
        # a backlog: read only the orders still unpaid, once a second, for up to 120 s (the
        # latency is each order's own updated_at, so how often this reads changes nothing
        # but the load)
        waited = 0
        while waited < 120:
            unpaid_ids = [i for i in ids if orders[i].get("status") != "paid"]
            if not unpaid_ids:
                break
            if waited % 10 == 0:
                progress(f"events: {len(unpaid_ids)} orders not paid yet, {waited}s after the end")
            await asyncio.sleep(1)
            waited += 1
            orders |= {o["id"]: o for o in await asyncio.gather(*(read(i) for i in unpaid_ids))}
    from_response, from_created, response_ms = [], [], []
    unpaid = 0
    for r in results:
        order = orders[r["order"]]
        if r["status"] != 201 or order.get("status") != "paid":
            unpaid += 1
            continue
        paid_at = parse_time(order["updated_at"])
        from_response.append((paid_at - r["answered"]) * 1000)
        from_created.append((paid_at - r["created"]) * 1000)
        response_ms.append((r["answered"] - r["sent"]) * 1000)
    out = {
        "payments": total,
        "waited_after_end_s": waited,
        "rate_per_s": round(total / elapsed, 1),
        "not_paid": unpaid,
        "paid_after_response_p50_ms": round(pct(from_response, 0.5), 1),
        "paid_after_response_p99_ms": round(pct(from_response, 0.99), 1),
        "paid_before_response": sum(1 for v in from_response if v < 0),
        "paid_after_created_p50_ms": round(pct(from_created, 0.5), 1),
        "paid_after_created_p99_ms": round(pct(from_created, 0.99), 1),
        "payment_response_p50_ms": round(pct(response_ms, 0.5), 1),
        "payment_response_p99_ms": round(pct(response_ms, 0.99), 1),
    }
    progress(
        f"events: {out['rate_per_s']} payments/s, paid after the response p50 "
        f"{out['paid_after_response_p50_ms']} ms p99 {out['paid_after_response_p99_ms']} ms "
        f"(after created_at p50 {out['paid_after_created_p50_ms']} p99 "
        f"{out['paid_after_created_p99_ms']}), POST /payments p99 "
        f"{out['payment_response_p99_ms']} ms, not paid {unpaid}"
    )
    return out


# ---------------------------------------------------------------------------------------------
# journey: virtual users through the gateway


async def journey(args: argparse.Namespace) -> dict[str, Any]:
    gw = f"http://127.0.0.1:{args.gateway}"
    counts: dict[str, int] = {}
    latencies: dict[str, list[float]] = {}
    failures: dict[str, int] = {}
    recording = [False]
    serial = [0]

    async def call(
        http: aiohttp.ClientSession,
        route: str,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        t0 = time.perf_counter()
        async with http.request(method, f"{gw}{path}", json=body, headers=hdrs) as response:
            raw = await response.read()
            status = response.status
        if recording[0]:
            counts[route] = counts.get(route, 0) + 1
            latencies.setdefault(route, []).append((time.perf_counter() - t0) * 1000)
            if status >= 400:
                key = f"{route} {status}"
                failures[key] = failures.get(key, 0) + 1
        return status, (json.loads(raw) if raw else None)

    def session() -> aiohttp.ClientSession:
        # a new user, a new client address: per-IP limits (public routes) count per user, as
        # they would for real users; each user's token has its own budget
        serial[0] += 1
        k = serial[0]
        local = f"127.{1 + (k >> 16) % 250}.{(k >> 8) % 256}.{1 + k % 250}"
        connector = aiohttp.TCPConnector(local_addr=(local, 0), limit=2)
        return aiohttp.ClientSession(connector=connector)

    async with session() as http:
        user = f"owner{os.getpid()}"
        password = "bench-password-1"
        await call(
            http,
            "register",
            "POST",
            "/auth/register",
            body={"username": user, "email": f"{user}@example.com", "password": password},
        )
        _, login = await call(
            http, "login", "POST", "/auth/login", body={"username": user, "password": password}
        )
        status, room = await call(
            http, "POST /chat/rooms", "POST", "/chat/rooms", login["access_token"], {"name": "b"}
        )
        if status != 201:
            raise SystemExit(f"journey setup: POST /chat/rooms {status} {room}")
    stop = [False]
    iterations = [0]

    async def user_journey(vu: int) -> None:
        n = 0
        while not stop[0]:
            n += 1
            async with session() as http:
                name = f"j{os.getpid()}x{vu}x{n}"
                await call(
                    http,
                    "POST /auth/register",
                    "POST",
                    "/auth/register",
                    body={"username": name, "email": f"{name}@example.com", "password": password},
                )
                _, tokens = await call(
                    http,
                    "POST /auth/login",
                    "POST",
                    "/auth/login",
                    body={"username": name, "password": password},
                )
                token = tokens["access_token"]
                await call(http, "GET /customers/me", "GET", "/customers/me", token)
                order_ids = []
                for _ in range(2):
                    status, order = await call(
                        http, "POST /orders", "POST", "/orders", token, ORDER
                    )
                    if status == 201:
                        order_ids.append(order["id"])
                await call(http, "GET /orders", "GET", "/orders", token)
                for order_id in order_ids:
                    await call(http, "GET /orders/{id}", "GET", f"/orders/{order_id}", token)
                if order_ids:
                    await call(
                        http,
                        "POST /payments",
                        "POST",
                        "/payments",
                        token,
                        {"order_id": order_ids[0], "card": CARD},
                        {"Idempotency-Key": uuid.uuid4().hex},
                    )
                for key in ("cart", "prefs"):
                    await call(
                        http,
                        "PUT /cache/{key}",
                        "PUT",
                        f"/cache/{key}",
                        token,
                        {"value": {"n": n}, "ttl_seconds": 600},
                    )
                for key in ("cart", "prefs", "cart"):
                    await call(http, "GET /cache/{key}", "GET", f"/cache/{key}", token)
                await call(
                    http,
                    "POST /chat/rooms/{id}/messages",
                    "POST",
                    f"/chat/rooms/{room['id']}/messages",
                    token,
                    {"body": f"hi {n}"},
                )
                await call(
                    http,
                    "GET /chat/rooms/{id}/messages",
                    "GET",
                    f"/chat/rooms/{room['id']}/messages?limit=20",
                    token,
                )
                if recording[0]:
                    iterations[0] += 1

    tasks = [asyncio.create_task(user_journey(i)) for i in range(args.vus)]
    await asyncio.sleep(args.warmup)
    recording[0] = True
    cpu0, t0 = cpu_seconds(args.pid), time.perf_counter()
    await asyncio.sleep(args.duration)
    elapsed = time.perf_counter() - t0
    cpu1 = cpu_seconds(args.pid)
    recording[0] = False
    stop[0] = True
    await asyncio.gather(*tasks, return_exceptions=True)
    total = sum(counts.values())
    cores = (cpu1 - cpu0) / elapsed
    out = {
        "vus": args.vus,
        "duration_s": round(elapsed, 1),
        "journeys": iterations[0],
        "requests": total,
        "rps": round(total / elapsed, 1),
        "stack_cores_used": round(cores, 2),
        "rps_per_core": round(total / elapsed / cores, 1) if cores else None,
        "failures": failures,
        "routes": {
            route: {
                "share": round(counts[route] / total, 4),
                "rps": round(counts[route] / elapsed, 1),
                "p50_ms": round(statistics.median(latencies[route]), 1),
                "p99_ms": round(pct(latencies[route], 0.99), 1),
            }
            for route in sorted(counts, key=lambda r: -counts[r])
        },
    }
    progress(
        f"journey: {out['rps']} req/s through the gateway, {cores:.2f} cores used by the stack "
        f"-> {out['rps_per_core']} req/s per core; {iterations[0]} journeys; failures {failures}"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="group", required=True)
    p = sub.add_parser("chat")
    p.add_argument("--impl", choices=["chat", "ceiling"], required=True)
    p.add_argument("--ports", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--senders", type=int, default=40)
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--warmup", type=float, default=1)
    p = sub.add_parser("files")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--sizes", default="1,100,1024")
    p.add_argument("--rounds", type=int, default=1)
    p = sub.add_parser("events")
    p.add_argument("--order", type=int, required=True)
    p.add_argument("--payment", type=int, required=True)
    p.add_argument("--rate", type=float, default=50)
    p.add_argument("--duration", type=float, default=20)
    p = sub.add_parser("journey")
    p.add_argument("--gateway", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--vus", type=int, default=32)
    p.add_argument("--duration", type=float, default=30)
    p.add_argument("--warmup", type=float, default=3)
    args = parser.parse_args()
    run = {"chat": chat, "files": files, "events": events, "journey": journey}[args.group]
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()

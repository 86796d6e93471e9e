"""Fault injection, each against servers the test starts itself (never the shared Redis on 6379):

- Redis stopped mid-traffic: every request answered 503 promptly (never a 500, never a hang);
  restarted empty: the service recovers without a restart of its own;
- a logged-out session stays refused after Redis comes back empty (issue 11 item 3);
- a service sent SIGTERM under load: every request either gets its answer or a connection error,
  and every write the client saw succeed is there afterwards;
- a downstream that accepts and never answers: ``ServiceClient`` gives up with a bounded
  ``DependencyUnavailable`` (503).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from svc_core import DependencyUnavailable, discover
from svc_core.client import ServiceClient
from svc_core.embedded import RedisServer
from svc_core.testing import TEST_ISSUER, KeyPair, free_port
from tests.security.harness import ALICE, Running, running_services

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not RedisServer.available(), reason="needs redis-server on the PATH"),
]

#: a request that is neither answered nor refused within this is a hang
HANG = 5.0


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=HANG)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield session


def restart(server: RedisServer, *, keep_data: bool = False) -> RedisServer:
    """The same port; an empty server, or (``keep_data``) one that loads what the old one
    saved, as AOF/RDB persistence does in production."""
    if keep_data:
        import redis

        client = redis.Redis.from_url(server.url)
        try:
            client.save()
        finally:
            client.close()
    server.stop()
    if keep_data:
        return RedisServer(port=server.port, data_dir=server.data_dir).start()
    return RedisServer(port=server.port).start()


async def fresh_token_second() -> None:
    """A service that finds an empty Redis (no revocation epoch) refuses tokens issued before
    it started, fail closed (svc_core README): tokens are minted in a later second."""
    await asyncio.sleep(1.1)


async def put(http: aiohttp.ClientSession, url: str, key: str, headers: dict[str, str]) -> int:
    async with http.put(f"{url}/cache/{key}", json={"value": key}, headers=headers) as resp:
        body = await resp.read()
        if resp.status >= 500:
            assert resp.status == 503, body
            assert resp.content_type == "application/problem+json", body
        return resp.status


# --- Redis stopped and restarted mid-traffic -------------------------------------------------


async def test_redis_outage_is_503_and_recovery_needs_no_restart(
    redis_server: RedisServer, http: aiohttp.ClientSession
) -> None:
    services = {"cache": discover()["cache"]}
    with running_services(services, redis_url=f"{redis_server.url}/0") as stack:
        await fresh_token_second()
        url, headers = stack.urls["cache"], stack.headers(ALICE)
        for i in range(20):
            assert await put(http, url, f"before-{i}", headers) == 200
        redis_server.stop()
        during, slowest = [], 0.0
        for i in range(20):
            started = time.monotonic()
            during.append(await put(http, url, f"during-{i}", headers))  # a hang raises
            slowest = max(slowest, time.monotonic() - started)
        assert set(during) == {503}, during
        # api.md/issue 11: answered within about a second (a bound against hanging on a dead
        # dependency, with room for a loaded machine; not a performance measurement)
        assert slowest < 2.0, slowest
        print(f"outage: slowest 503 took {slowest:.3f} s")
        server = RedisServer(port=redis_server.port).start()  # back, but empty
        try:
            # Redis lost its data, so revocations may be lost too: the token issued before is
            # refused from now on (api.md, logout: fail closed), never served again.
            old = [await put(http, url, f"old-{i}", headers) for i in range(20)]
            assert 200 not in old, old
            assert set(old) <= {401, 503}, old
            await asyncio.sleep(1.1)  # a token of a later second than the loss
            fresh = stack.headers(ALICE)
            recovered_after = None
            statuses = []
            for i in range(60):
                statuses.append(await put(http, url, f"after-{i}", fresh))
                if recovered_after is None and statuses[-1] == 200:
                    recovered_after = i
            assert recovered_after is not None, statuses
            # once one request succeeds, every later one does (issue 11 item 4: no stale
            # pooled connection fails afterwards)
            assert set(statuses[recovered_after:]) == {200}, statuses
            print(f"recovered after {recovered_after} requests answered 503")
        finally:
            server.stop()


async def test_no_503_once_redis_is_back(
    redis_server: RedisServer, http: aiohttp.ClientSession
) -> None:
    services = {"cache": discover()["cache"]}
    with running_services(services, redis_url=f"{redis_server.url}/0") as stack:
        await fresh_token_second()
        url, headers = stack.urls["cache"], stack.headers(ALICE)
        # concurrent traffic fills the pool with several connections
        for _ in range(5):
            statuses = await asyncio.gather(*(put(http, url, f"k{i}", headers) for i in range(20)))
            assert set(statuses) == {200}
        # back, with its data, before any request sees it gone: only the pooled connections
        # are stale (an empty restart is the fail-closed case, tested below)
        server = restart(redis_server, keep_data=True)
        try:
            after = [await put(http, url, f"after-{i}", headers) for i in range(40)]
            after += await asyncio.gather(*(put(http, url, f"c{i}", headers) for i in range(20)))
            assert set(after) == {200}, f"{after.count(503)} of {len(after)} answered 503"
        finally:
            server.stop()


async def test_a_revoked_session_stays_revoked_after_redis_restarts_empty(
    redis_server: RedisServer, http: aiohttp.ClientSession
) -> None:
    all_services = discover()
    services = {name: all_services[name] for name in ("customer", "cache")}
    with running_services(services, redis_url=f"{redis_server.url}/0") as stack:
        await fresh_token_second()
        headers = await _logged_in(http, stack)
        async with http.post(f"{stack.urls['customer']}/auth/logout", headers=headers) as resp:
            assert resp.status == 204
        await _eventually_status(http, f"{stack.urls['cache']}/cache/k", headers, {401})
        server = restart(redis_server)
        try:
            # past the mirror's refresh (about a second): every answer stays 401 (or 503)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                async with http.get(f"{stack.urls['cache']}/cache/k", headers=headers) as resp:
                    assert resp.status in (401, 503), resp.status
                await asyncio.sleep(0.1)
        finally:
            server.stop()


async def _logged_in(http: aiohttp.ClientSession, stack: Running) -> dict[str, str]:
    base = stack.urls["customer"]
    name = f"user_{time.monotonic_ns()}"
    body = {"username": name, "email": f"{name}@example.com", "password": "correct horse battery"}
    async with http.post(f"{base}/auth/register", json=body) as resp:
        assert resp.status == 201, await resp.text()
    login = {"username": name, "password": body["password"]}
    async with http.post(f"{base}/auth/login", json=login) as resp:
        assert resp.status == 200, await resp.text()
        return {"Authorization": f"Bearer {(await resp.json())['access_token']}"}


async def _eventually_status(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], statuses: set[int]
) -> None:
    deadline = time.monotonic() + 5
    while True:
        async with http.get(url, headers=headers) as resp:
            if resp.status in statuses:
                return
        assert time.monotonic() < deadline, f"still {resp.status}"
        await asyncio.sleep(0.05)


# --- SIGTERM under load ----------------------------------------------------------------------


def _start_cache(redis_url: str, keys: KeyPair, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "PORT": str(port),
        "REDIS_URL": redis_url,
        "JWT_ISSUER": TEST_ISSUER,
        "JWT_PUBLIC_KEYS": keys.public_pem,
        "UVLOOP": "false",
        "ACCESS_LOG": "false",
        "LOG_LEVEL": "WARNING",
        "SHUTDOWN_TIMEOUT": "5",
    }
    return subprocess.Popen([sys.executable, "-m", "svc_cache"], env=env)


async def _wait_up(http: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        assert proc.poll() is None, "the service exited"
        try:
            async with http.get(f"{url}/health") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        assert time.monotonic() < deadline, "the service did not start"
        await asyncio.sleep(0.1)


async def test_sigterm_under_load_loses_no_acknowledged_write(
    redis_server: RedisServer, http: aiohttp.ClientSession
) -> None:
    from svc_core.testing import mint_token

    keys = KeyPair.generate()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    redis_url = f"{redis_server.url}/0"
    proc = _start_cache(redis_url, keys, port)
    outcomes: dict[str, Any] = {}
    try:
        await _wait_up(http, url, proc)
        # A service that finds an empty Redis (no revocation epoch) refuses tokens issued before
        # it started (fail closed, svc_core README): mint the token after, in a later second.
        await asyncio.sleep(1.1)
        headers = {"Authorization": f"Bearer {mint_token(keys, sub=ALICE, issuer=TEST_ISSUER)}"}
        # a fresh connection per request: a dropped one is a refused or reset connection, never
        # a keep-alive race
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=HANG)
        ) as client:

            async def worker(w: int) -> None:
                for i in range(10_000):
                    key = f"w{w}-{i}"
                    try:
                        async with client.put(
                            f"{url}/cache/{key}", json={"value": key}, headers=headers
                        ) as resp:
                            await resp.read()
                            outcomes[key] = resp.status
                    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                        outcomes[key] = type(exc).__name__
                        if proc.poll() is not None or isinstance(exc, aiohttp.ClientConnectorError):
                            return
                    except TimeoutError:
                        outcomes[key] = "hang"
                        return

            workers = [asyncio.create_task(worker(w)) for w in range(16)]
            deadline = time.monotonic() + 60
            while sum(1 for v in outcomes.values() if v == 200) < 200:
                assert time.monotonic() < deadline, f"too few writes succeeded: {outcomes}"[:500]
                await asyncio.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(asyncio.gather(*workers), 30)
        assert await asyncio.to_thread(proc.wait, 15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    statuses = [v for v in outcomes.values() if isinstance(v, int)]
    errors = [v for v in outcomes.values() if isinstance(v, str)]
    assert "hang" not in errors
    assert set(statuses) == {200}, sorted(set(statuses))  # no 5xx while it drained
    # every write the client was told succeeded is there: read back through a fresh instance
    acknowledged = [k for k, v in outcomes.items() if v == 200]
    proc = _start_cache(redis_url, keys, port)
    try:
        await _wait_up(http, url, proc)
        for key in acknowledged:
            async with http.get(f"{url}/cache/{key}", headers=headers) as resp:
                assert resp.status == 200, key
                assert (await resp.json())["value"] == key
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    print(f"{len(acknowledged)} acknowledged, {len(errors)} refused: {set(errors)}")


# --- a downstream that never answers ---------------------------------------------------------


async def test_a_downstream_that_never_answers_is_a_bounded_503() -> None:
    held: list[asyncio.StreamWriter] = []

    async def accept_and_hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # reads nothing, answers nothing, keeps the connection open

    server = await asyncio.start_server(accept_and_hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            client = ServiceClient(session, f"http://127.0.0.1:{port}", timeout=0.5, retries=2)
            for method in ("GET", "POST"):
                started = time.monotonic()
                with pytest.raises(DependencyUnavailable) as caught:
                    await client.request(method, "/orders/x")
                elapsed = time.monotonic() - started
                assert caught.value.instance_status == 503
                # 3 attempts of 0.5 s for GET (plus backoff), 1 for POST: bounded, not a hang
                assert elapsed < HANG, elapsed
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()

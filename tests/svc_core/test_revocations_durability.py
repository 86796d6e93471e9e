"""A revoked session stays revoked whatever happens to Redis (api.md, POST /auth/logout).

Against a redis-server each test starts itself (restarted empty on purpose), or this test's own
database on the shared Redis (emptied with FLUSHDB while the services keep running).
"""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from svc_core import keys
from svc_core.auth import EPOCH_KEY, NOT_BEFORE_KEY, REVOKED_KEY, revoke_session
from svc_core.embedded import RedisServer
from svc_core.redis import open_redis
from svc_core.testing import eventually
from tests.svc_core.toy import ToySettings, create_toy_app

needs_redis_server = pytest.mark.skipif(
    not RedisServer.available(), reason="needs redis-server on the PATH"
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def start(aiohttp_client, make_settings, redis_url: str):
    app = create_toy_app(make_settings(ToySettings, redis_url=redis_url))
    client = await aiohttp_client(app)
    await eventually(lambda: app[keys.REVOCATIONS].synced)
    return app, client


async def status(client, token: str) -> tuple[int, str | None]:
    resp = await client.get("/whoami", headers=bearer(token))
    body = await resp.json(content_type=None)
    return resp.status, body.get("code")


async def wait_for_the_next_second(after: float) -> None:
    """Tokens carry iat in whole seconds: one issued in the second the loss was noticed may
    predate it, and is refused; the next second's are not."""
    delay = math.floor(after) + 1 - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


@needs_redis_server
async def test_a_logged_out_session_stays_refused_after_redis_restarts_empty(
    aiohttp_client, make_settings, make_token, redis_server
):
    url = f"{redis_server.url}/0"
    app, client = await start(aiohttp_client, make_settings, url)
    revoked = make_token(sid="logged-out")
    issued_before = make_token(sid="still-logged-in")
    assert (await status(client, revoked))[0] == 200
    assert (await status(client, issued_before))[0] == 200
    await revoke_session(app[keys.REDIS], "logged-out", until=time.time() + 905)
    assert await eventually(lambda: status(client, revoked)) == (401, "session_revoked")
    await eventually(lambda: app[keys.REVOCATIONS].known("logged-out"))

    redis_server.stop()
    redis_server.start()  # the same port, nothing persisted: every record is gone

    # From the moment Redis is back until the service has noticed the loss and after: the
    # revoked session is never accepted (503 while Redis cannot answer is fine).
    seen = set()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        code = await status(client, revoked)
        seen.add(code)
        assert code[0] != 200, "a revoked session came back after Redis lost its records"
        await asyncio.sleep(0.02)
    assert (401, "session_revoked") in seen
    await eventually(lambda: app[keys.REVOCATIONS].synced)
    assert await status(client, revoked) == (401, "session_revoked")

    # Revocations may have been lost: every token issued before the loss is refused.
    assert await status(client, issued_before) == (401, "session_revoked")
    # The record is back in Redis (the mirror wrote what it knew), and so is the cut-off.
    redis = open_redis(url)
    try:
        assert await redis.zscore(REVOKED_KEY, "logged-out") is not None
        assert await redis.get(EPOCH_KEY)
        not_before = int(await redis.get(NOT_BEFORE_KEY)) / 1000
    finally:
        await redis.aclose()
    assert not_before == app[keys.REVOCATIONS].not_before

    # A service started only now, which never saw the records, refuses both as well.
    _, client2 = await start(aiohttp_client, make_settings, url)
    assert await status(client2, revoked) == (401, "session_revoked")
    assert await status(client2, issued_before) == (401, "session_revoked")

    # A token issued after the recovery is accepted everywhere.
    await wait_for_the_next_second(not_before)
    fresh = make_token(sid="logged-in-again")
    assert (await status(client, fresh))[0] == 200
    assert (await status(client2, fresh))[0] == 200


async def test_data_lost_without_a_restart_is_noticed(
    aiohttp_client, make_settings, make_token, redis_url
):
    """FLUSHDB (or eviction) keeps every connection up: the periodic epoch check notices."""
    app, client = await start(aiohttp_client, make_settings, redis_url)
    revocations = app[keys.REVOCATIONS]
    revocations.check_interval = 0.2
    revoked = make_token(sid="gone")
    issued_before = make_token(sid="other")
    await revoke_session(app[keys.REDIS], "gone", until=time.time() + 905)
    await eventually(lambda: revocations.known("gone"))
    assert revocations.not_before == 0.0  # the test database carries an epoch already

    await app[keys.REDIS].flushdb()
    assert await status(client, revoked) == (401, "session_revoked")  # the mirror kept it
    await eventually(lambda: revocations.not_before > 0)
    assert await status(client, revoked) == (401, "session_revoked")
    assert await status(client, issued_before) == (401, "session_revoked")
    await eventually(lambda: app[keys.REDIS].zscore(REVOKED_KEY, "gone"))

    await wait_for_the_next_second(revocations.not_before)
    assert (await status(client, make_token(sid="new")))[0] == 200


async def test_out_of_sync_checks_notice_the_loss_too(
    aiohttp_client, make_settings, make_token, redis_url
):
    """With the mirror down, each request asks Redis; the same check reveals lost data."""
    app, client = await start(aiohttp_client, make_settings, redis_url)
    revocations = app[keys.REVOCATIONS]
    issued_before = make_token(sid="before-the-loss")
    assert (await status(client, issued_before))[0] == 200
    await revocations.stop()
    assert not revocations.synced
    await app[keys.REDIS].flushdb()
    assert await status(client, issued_before) == (401, "session_revoked")
    assert revocations.not_before > 0


async def test_the_cut_off_is_written_back_when_redis_loses_it(
    aiohttp_client, make_settings, redis_url
):
    app, _ = await start(aiohttp_client, make_settings, redis_url)
    revocations = app[keys.REVOCATIONS]
    revocations.check_interval = 0.2
    redis = app[keys.REDIS]
    await redis.flushdb()
    await eventually(lambda: revocations.not_before > 0)
    cut_off = revocations.not_before
    await redis.delete(NOT_BEFORE_KEY)  # lost again, alone: the epoch is still there
    stored = await eventually(lambda: redis.get(NOT_BEFORE_KEY))
    assert int(stored) / 1000 == cut_off
    assert revocations.not_before == cut_off


async def test_a_first_start_refuses_only_tokens_from_earlier_seconds(
    aiohttp_client, make_settings, make_token, redis_url
):
    """An empty Redis at start may be new or emptied: tokens issued before the second the
    first service started in are refused, later ones are not."""
    redis = open_redis(redis_url)
    await redis.flushdb()  # no epoch at all
    await redis.aclose()
    now = int(time.time())
    old = make_token(claims={"iat": now - 5, "exp": now + 800})
    app, client = await start(aiohttp_client, make_settings, redis_url)
    assert app[keys.REVOCATIONS].not_before == float(int(app[keys.REVOCATIONS].not_before))
    assert await status(client, old) == (401, "session_revoked")
    assert (await status(client, make_token()))[0] == 200

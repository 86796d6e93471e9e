"""GET /orders: limit bounds, cursors that walk every page once, stability, the status filter."""

from __future__ import annotations

import datetime as dt

import pytest

from svc_core import keys
from tests.order.helpers import create_order


async def walk(client, headers, *, limit, params=None, between_pages=None):
    """Every id the cursor walk yields, in order, and the number of pages."""
    ids, cursor, pages = [], None, 0
    while True:
        query = {"limit": str(limit), **(params or {})}
        if cursor is not None:
            query["cursor"] = cursor
        resp = await client.get("/orders", params=query, headers=headers)
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        assert len(page["items"]) <= limit
        ids += [order["id"] for order in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return ids, pages
        if between_pages is not None:
            await between_pages(pages)


async def make_orders(client, headers, count):
    return [(await create_order(client, headers))["id"] for _ in range(count)]


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "", "1.5"])
async def test_limit_out_of_range_is_422(client, alice, limit):
    resp = await client.get("/orders", params={"limit": limit}, headers=alice)
    assert resp.status == 422
    assert "limit" in (await resp.json())["errors"]


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "eyJhIjoxfQ"},  # valid base64 of JSON, not a cursor
        {"status": "PAID"},
        {"status": "shipped"},
        {"sort": "asc"},
        {"customer_id": "cust-bob"},
    ],
)
async def test_bad_query_is_422(client, alice, params):
    resp = await client.get("/orders", params=params, headers=alice)
    assert resp.status == 422
    assert set((await resp.json())["errors"]) == set(params)


async def test_repeated_parameter_is_422(client, alice):
    resp = await client.get("/orders?limit=1&limit=2", headers=alice)
    assert resp.status == 422


async def test_default_limit_is_20_newest_first(client, alice):
    ids = await make_orders(client, alice, 21)
    resp = await client.get("/orders", headers=alice)
    page = await resp.json()
    assert [o["id"] for o in page["items"]] == ids[::-1][:20]
    assert page["next_cursor"] is not None


async def test_limit_bounds_are_accepted(client, alice):
    ids = await make_orders(client, alice, 3)
    one = await (await client.get("/orders", params={"limit": "1"}, headers=alice)).json()
    assert [o["id"] for o in one["items"]] == [ids[-1]]
    hundred = await (await client.get("/orders", params={"limit": "100"}, headers=alice)).json()
    assert [o["id"] for o in hundred["items"]] == ids[::-1]
    assert hundred["next_cursor"] is None


async def test_empty_list(client, alice):
    page = await (await client.get("/orders", headers=alice)).json()
    assert page == {"items": [], "next_cursor": None}


async def test_cursor_walks_every_order_once(client, alice, bob):
    ids = await make_orders(client, alice, 23)
    await make_orders(client, bob, 2)
    seen, pages = await walk(client, alice, limit=5)
    assert seen == ids[::-1]
    assert pages == 5


async def test_walk_is_stable_while_orders_are_added(client, alice):
    ids = await make_orders(client, alice, 12)
    added = []

    async def add_some(pages_so_far):
        added.extend(await make_orders(client, alice, 2))

    seen, _ = await walk(client, alice, limit=4, between_pages=add_some)
    assert seen == ids[::-1]  # no gap, no duplicate, none of the newer ones mid-walk
    assert added
    first = await (await client.get("/orders", params={"limit": "1"}, headers=alice)).json()
    assert first["items"][0]["id"] == added[-1]  # a new walk starts with the newest


async def test_ties_in_created_at_are_broken_by_id_descending(client, alice):
    # Orders created in the same millisecond: stored directly with one timestamp.
    orders = client.app[keys.MONGO_DB]["orders"]
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ids = [f"tie-{n:02d}" for n in range(7)]
    for order_id in ids:
        await orders.insert_one(
            {
                "_id": order_id,
                "customer_id": "cust-alice",
                "status": "pending",
                "currency": "EUR",
                "items": [{"sku": "a", "name": "a", "quantity": 1, "unit_price": 1}],
                "total": 1,
                "created_at": when,
                "updated_at": when,
            }
        )
    seen, _ = await walk(client, alice, limit=2)
    assert seen == sorted(ids, reverse=True)


async def test_status_filter(client, alice):
    ids = await make_orders(client, alice, 5)
    cancelled = ids[1:4]
    for order_id in cancelled:
        resp = await client.post(f"/orders/{order_id}/cancel", headers=alice)
        assert resp.status == 200
    seen, _ = await walk(client, alice, limit=1, params={"status": "cancelled"})
    assert seen == cancelled[::-1]
    seen, _ = await walk(client, alice, limit=10, params={"status": "pending"})
    assert seen == [ids[4], ids[0]]
    seen, _ = await walk(client, alice, limit=10, params={"status": "paid"})
    assert seen == []


@pytest.mark.parametrize("mode", ["primary", "secondaryPreferred", "nearest"])
async def test_the_list_reads_with_the_configured_read_preference(
    aiohttp_client, make_settings, alice, monkeypatch, mode
):
    from svc_core.testing import record_list_reads
    from svc_order import OrderSettings, create_app, repository

    seen = record_list_reads(monkeypatch, repository)
    client = await aiohttp_client(
        create_app(make_settings(OrderSettings, mongo_read_preference=mode))
    )
    order = await create_order(client, alice)
    resp = await client.get("/orders", headers=alice)
    assert resp.status == 200
    # the stand-in shares one store, so the list sees the write; on a replica set it may not yet
    assert [o["id"] for o in (await resp.json())["items"]] == [order["id"]]
    assert seen == [mode]

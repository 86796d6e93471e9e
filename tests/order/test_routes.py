"""Every row of api.md's Order table, success and failure, and the order of the checks."""

from __future__ import annotations

import re

import pytest

from svc_core.testing import assert_problem
from tests.order.helpers import ITEMS, ITEMS_TOTAL, create_order, get_order

RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
ORDER_FIELDS = {
    "id",
    "customer_id",
    "status",
    "currency",
    "items",
    "total",
    "created_at",
    "updated_at",
}


# --- POST /orders ----------------------------------------------------------------------------


async def test_create_returns_pending_order_with_computed_total(client, alice):
    resp = await client.post("/orders", json={"currency": "EUR", "items": ITEMS}, headers=alice)
    assert resp.status == 201
    order = await resp.json()
    assert set(order) == ORDER_FIELDS
    assert order["status"] == "pending"
    assert order["customer_id"] == "cust-alice"
    assert order["currency"] == "EUR"
    assert order["items"] == ITEMS
    assert order["total"] == ITEMS_TOTAL
    assert RFC3339_MS.match(order["created_at"])
    assert order["updated_at"] == order["created_at"]
    assert await get_order(client, alice, order["id"]) == order


async def test_create_total_uses_integer_arithmetic_at_the_limits(client, alice):
    items = [
        {"sku": f"S{i}", "name": "n", "quantity": 1000, "unit_price": 1_000_000_000}
        for i in range(100)
    ]
    order = await create_order(client, alice, items=items, currency="KWD")
    assert order["total"] == 100 * 1000 * 1_000_000_000
    assert isinstance(order["total"], int)


async def test_create_free_items_total_zero(client, alice):
    items = [{"sku": "free", "name": "Sample", "quantity": 3, "unit_price": 0}]
    order = await create_order(client, alice, items=items)
    assert order["total"] == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "paid"), ("total", 1), ("customer_id", "cust-bob"), ("id", "x")],
)
async def test_create_rejects_service_owned_fields(client, alice, field, value):
    body = {"currency": "EUR", "items": ITEMS, field: value}
    resp = await client.post("/orders", json=body, headers=alice)
    problem = await assert_problem(resp, 422, "validation_failed")
    assert field in problem["errors"]
    list_resp = await client.get("/orders", headers=alice)
    assert (await list_resp.json())["items"] == []  # nothing stored


async def test_create_without_token_is_401(client):
    resp = await client.post("/orders", json={"currency": "EUR", "items": ITEMS})
    await assert_problem(resp, 401, "unauthorized")


async def test_token_signed_by_an_untrusted_key_is_401(client, other_keys):
    from svc_core.testing import mint_token

    token = mint_token(other_keys, sub="cust-alice")
    resp = await client.get("/orders", headers={"Authorization": f"Bearer {token}"})
    await assert_problem(resp, 401, "unauthorized")


async def test_token_in_query_only_is_401(client, make_token):
    resp = await client.get("/orders", params={"jwt": make_token(sub="cust-alice")})
    await assert_problem(resp, 401, "unauthorized")


async def test_create_malformed_json_is_400(client, alice):
    headers = {**alice, "Content-Type": "application/json"}
    resp = await client.post("/orders", data=b'{"currency": "EUR",', headers=headers)
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"


# --- GET /orders/{id} ------------------------------------------------------------------------


async def test_get_missing_order_is_404(client, alice):
    resp = await client.get("/orders/does-not-exist", headers=alice)
    await assert_problem(resp, 404, "not_found")


async def test_get_rejects_unknown_query_parameters(client, alice):
    order = await create_order(client, alice)
    resp = await client.get(f"/orders/{order['id']}", params={"expand": "1"}, headers=alice)
    problem = await assert_problem(resp, 422, "validation_failed")
    assert "expand" in problem["errors"]


# --- PATCH /orders/{id} ----------------------------------------------------------------------


async def test_patch_items_recomputes_total(client, alice):
    order = await create_order(client, alice)
    items = [{"sku": "NEW", "name": "New thing", "quantity": 3, "unit_price": 250}]
    resp = await client.patch(f"/orders/{order['id']}", json={"items": items}, headers=alice)
    assert resp.status == 200
    patched = await resp.json()
    assert patched["items"] == items
    assert patched["total"] == 750
    assert patched["currency"] == "EUR"
    assert patched["status"] == "pending"
    assert patched["created_at"] == order["created_at"]
    assert patched["updated_at"] >= order["updated_at"]
    assert await get_order(client, alice, order["id"]) == patched


async def test_patch_currency_only_keeps_items(client, alice):
    order = await create_order(client, alice)
    resp = await client.patch(f"/orders/{order['id']}", json={"currency": "JPY"}, headers=alice)
    assert resp.status == 200
    patched = await resp.json()
    assert patched["currency"] == "JPY"
    assert patched["items"] == order["items"]
    assert patched["total"] == order["total"]


async def test_patch_both_fields(client, alice):
    order = await create_order(client, alice)
    items = [{"sku": "A", "name": "a", "quantity": 1, "unit_price": 7}]
    resp = await client.patch(
        f"/orders/{order['id']}", json={"items": items, "currency": "USD"}, headers=alice
    )
    patched = await resp.json()
    assert (patched["currency"], patched["total"]) == ("USD", 7)


@pytest.mark.parametrize("payload", [{}, None])
async def test_patch_needs_at_least_one_field(client, alice, payload):
    order = await create_order(client, alice)
    kwargs = {"json": payload} if payload is not None else {}
    resp = await client.patch(f"/orders/{order['id']}", headers=alice, **kwargs)
    await assert_problem(resp, 422, "validation_failed")


@pytest.mark.parametrize("field", ["status", "total", "customer_id", "id", "created_at"])
async def test_patch_rejects_service_owned_fields(client, alice, field):
    order = await create_order(client, alice)
    body = {"currency": "USD", field: "paid" if field == "status" else 1}
    resp = await client.patch(f"/orders/{order['id']}", json=body, headers=alice)
    problem = await assert_problem(resp, 422, "validation_failed")
    assert field in problem["errors"]
    assert await get_order(client, alice, order["id"]) == order  # unchanged


async def test_patch_missing_order_is_404_before_body_validation(client, alice):
    resp = await client.patch("/orders/nope", json={"status": "paid"}, headers=alice)
    await assert_problem(resp, 404, "not_found")


async def test_patch_not_pending_is_409(client, alice):
    order = await create_order(client, alice)
    await client.post(f"/orders/{order['id']}/cancel", headers=alice)
    resp = await client.patch(f"/orders/{order['id']}", json={"currency": "USD"}, headers=alice)
    await assert_problem(resp, 409, "order_not_pending")


async def test_patch_validation_comes_before_state(client, alice):
    order = await create_order(client, alice)
    await client.post(f"/orders/{order['id']}/cancel", headers=alice)
    resp = await client.patch(f"/orders/{order['id']}", json={"currency": "eur"}, headers=alice)
    await assert_problem(resp, 422, "validation_failed")


# --- POST /orders/{id}/cancel ----------------------------------------------------------------


@pytest.mark.parametrize("payload", [None, {}])
async def test_cancel_pending_order(client, alice, payload):
    order = await create_order(client, alice)
    kwargs = {"json": payload} if payload is not None else {}
    resp = await client.post(f"/orders/{order['id']}/cancel", headers=alice, **kwargs)
    assert resp.status == 200
    cancelled = await resp.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["total"] == order["total"]
    assert (await get_order(client, alice, order["id"]))["status"] == "cancelled"


async def test_cancel_twice_is_409(client, alice):
    order = await create_order(client, alice)
    await client.post(f"/orders/{order['id']}/cancel", headers=alice)
    resp = await client.post(f"/orders/{order['id']}/cancel", headers=alice)
    await assert_problem(resp, 409, "order_not_pending")


async def test_cancel_takes_no_body(client, alice):
    order = await create_order(client, alice)
    resp = await client.post(f"/orders/{order['id']}/cancel", json={"reason": "x"}, headers=alice)
    problem = await assert_problem(resp, 422, "validation_failed")
    assert "reason" in problem["errors"]
    assert (await get_order(client, alice, order["id"]))["status"] == "pending"


async def test_cancel_missing_order_is_404(client, alice):
    resp = await client.post("/orders/nope/cancel", json={"reason": "x"}, headers=alice)
    await assert_problem(resp, 404, "not_found")


# --- DELETE /orders/{id} ---------------------------------------------------------------------


async def test_delete_pending_order(client, alice):
    order = await create_order(client, alice)
    resp = await client.delete(f"/orders/{order['id']}", headers=alice)
    assert resp.status == 204
    assert await resp.read() == b""
    resp = await client.get(f"/orders/{order['id']}", headers=alice)
    await assert_problem(resp, 404, "not_found")


async def test_delete_cancelled_order(client, alice):
    order = await create_order(client, alice)
    await client.post(f"/orders/{order['id']}/cancel", headers=alice)
    resp = await client.delete(f"/orders/{order['id']}", headers=alice)
    assert resp.status == 204


async def test_delete_twice_is_404(client, alice):
    order = await create_order(client, alice)
    await client.delete(f"/orders/{order['id']}", headers=alice)
    resp = await client.delete(f"/orders/{order['id']}", headers=alice)
    await assert_problem(resp, 404, "not_found")


async def test_delete_takes_no_body(client, alice):
    order = await create_order(client, alice)
    resp = await client.delete(f"/orders/{order['id']}", json={"force": True}, headers=alice)
    await assert_problem(resp, 422, "validation_failed")
    assert (await get_order(client, alice, order["id"]))["status"] == "pending"


# --- ownership: someone else's order is exactly a missing one --------------------------------


ROUTES = [
    ("GET", "", None),
    ("PATCH", "", {"currency": "USD"}),
    ("PATCH", "", {"status": "paid"}),  # 404 before 422
    ("POST", "/cancel", None),
    ("POST", "/cancel", {"bad": 1}),
    ("DELETE", "", None),
]


@pytest.mark.parametrize(("method", "suffix", "payload"), ROUTES)
async def test_other_customers_order_is_404_everywhere(client, alice, bob, method, suffix, payload):
    order = await create_order(client, alice)
    kwargs = {"json": payload} if payload is not None else {}
    theirs = await client.request(method, f"/orders/{order['id']}{suffix}", headers=bob, **kwargs)
    missing = await client.request(method, f"/orders/missing{suffix}", headers=bob, **kwargs)
    p_theirs = await assert_problem(theirs, 404, "not_found")
    p_missing = await assert_problem(missing, 404, "not_found")
    assert (p_theirs["title"], p_theirs["detail"]) == (p_missing["title"], p_missing["detail"])
    assert await get_order(client, alice, order["id"]) == order  # untouched


PATH_ROUTES = [
    ("GET", "", None),
    ("PATCH", "", {"currency": "USD"}),
    ("POST", "/cancel", None),
    ("DELETE", "", None),
]


@pytest.mark.parametrize(("method", "suffix", "payload"), PATH_ROUTES)
async def test_unknown_query_parameter_is_422_after_the_404(client, alice, method, suffix, payload):
    order = await create_order(client, alice)
    kwargs = {"json": payload} if payload is not None else {}
    url = f"/orders/{order['id']}{suffix}"
    resp = await client.request(method, url, params={"x": "1"}, headers=alice, **kwargs)
    problem = await assert_problem(resp, 422, "validation_failed")
    assert problem["errors"] == {"x": ["Unknown query parameter."]}
    assert await get_order(client, alice, order["id"]) == order  # nothing changed
    missing = await client.request(
        method, f"/orders/missing{suffix}", params={"x": "1"}, headers=alice, **kwargs
    )
    await assert_problem(missing, 404, "not_found")  # the path's order is checked first


async def test_list_shows_only_the_callers_orders(client, alice, bob):
    mine = await create_order(client, alice)
    await create_order(client, bob)
    resp = await client.get("/orders", headers=alice)
    assert [o["id"] for o in (await resp.json())["items"]] == [mine["id"]]


async def test_openapi_documents_the_order_routes(client):
    resp = await client.get("/openapi.json")
    spec = await resp.json()
    assert {"/orders", "/orders/{order_id}", "/orders/{order_id}/cancel"} <= set(spec["paths"])
    assert set(spec["paths"]["/orders/{order_id}"]) >= {"get", "patch", "delete"}

"""The rules on their own: the state machine, totals, edits, the currency table."""

from __future__ import annotations

import datetime as dt

import pytest

from svc_order import domain
from svc_order.currencies import MINOR_UNITS, is_supported
from svc_order.domain import Status

NOW = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)


def order(status: Status, updated_at: dt.datetime = NOW - dt.timedelta(days=1)) -> dict:
    return {
        "status": status.value,
        "items": [{"quantity": 2, "unit_price": 3}],
        "total": 6,
        "updated_at": updated_at,
    }


def test_the_state_machine_has_exactly_these_transitions():
    edges = {(t.source, t.target) for t in (domain.PAY, domain.REFUND, domain.CANCEL)}
    assert edges == {
        (Status.PENDING, Status.PAID),
        (Status.PAID, Status.REFUNDED),
        (Status.PENDING, Status.CANCELLED),
    }


@pytest.mark.parametrize("status", list(Status))
def test_only_pending_orders_are_editable(status):
    if status is Status.PENDING:
        domain.ensure_editable(order(status))
    else:
        with pytest.raises(domain.OrderNotPending):
            domain.ensure_editable(order(status))


@pytest.mark.parametrize("status", list(Status))
def test_orders_that_took_money_are_not_deletable(status):
    if status in (Status.PAID, Status.REFUNDED):
        with pytest.raises(domain.OrderNotDeletable) as info:
            domain.ensure_deletable(order(status))
        assert info.value.instance_code == "order_not_deletable"
    else:
        domain.ensure_deletable(order(status))


@pytest.mark.parametrize("status", [Status.PAID, Status.REFUNDED, Status.CANCELLED])
def test_cancel_needs_pending(status):
    with pytest.raises(domain.OrderNotPending) as info:
        domain.ensure_can(order(status), domain.CANCEL)
    assert (info.value.instance_status, info.value.instance_code) == (409, "order_not_pending")


def test_total_is_exact_integer_arithmetic():
    items = [{"quantity": 1000, "unit_price": 999_999_999}] * 100
    assert domain.order_total(items) == 100 * 1000 * 999_999_999
    assert domain.order_total([]) == 0


def test_new_order_is_pending_with_its_total():
    created = domain.new_order(
        customer_id="c", currency="EUR", items=[{"quantity": 3, "unit_price": 5}], now=NOW
    )
    assert (created["status"], created["total"]) == ("pending", 15)
    assert created["created_at"] == created["updated_at"] == NOW


def test_revision_recomputes_the_total():
    items = [{"quantity": 4, "unit_price": 10}]
    assert domain.revision(order(Status.PENDING), {"items": items}, now=NOW) == {
        "items": items,
        "total": 40,
        "updated_at": NOW,
    }
    revised = domain.revision(order(Status.PENDING), {"currency": "JPY"}, now=NOW)
    assert (revised["currency"], revised["total"]) == ("JPY", 6)


@pytest.mark.parametrize(
    "previous",
    [NOW, NOW + dt.timedelta(seconds=5), NOW.replace(tzinfo=None)],
    ids=["same-millisecond", "clock-behind", "naive-from-mongomock"],
)
def test_an_edit_always_makes_a_new_version(previous):
    # updated_at is the version a payment is checked against: an edit never keeps it
    revised = domain.revision(order(Status.PENDING, previous), {"currency": "JPY"}, now=NOW)
    expected = previous.replace(tzinfo=dt.UTC) + dt.timedelta(milliseconds=1)
    assert revised["updated_at"] == expected


def test_currency_table():
    assert all(len(code) == 3 and code.isalpha() and code.isupper() for code in MINOR_UNITS)
    assert (MINOR_UNITS["EUR"], MINOR_UNITS["JPY"], MINOR_UNITS["KWD"]) == (2, 0, 3)
    assert MINOR_UNITS["CLF"] == 4
    for code in ("XAU", "XAG", "XPT", "XPD", "XDR", "XSU", "XUA", "XTS", "XXX", "XBA", "eur"):
        assert not is_supported(code)
    for code in ("HRK", "ZWL", "ANG", "SLL"):  # withdrawn
        assert not is_supported(code)
    assert len(MINOR_UNITS) > 150

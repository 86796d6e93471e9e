"""Payment providers behind one small interface.

A provider charges a card and refunds a charge by its reference. The service keeps only what a
provider hands back (status, failure code, reference) and the card's brand and last four digits;
the :class:`Card` passed in is never stored or logged (its ``repr`` shows neither number nor CVC).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from typing import ClassVar, Protocol

from svc_payment.domain import Status, card_brand


@dataclasses.dataclass(frozen=True, slots=True)
class Card:
    number: str = dataclasses.field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = dataclasses.field(repr=False)

    @property
    def brand(self) -> str:
        return card_brand(self.number)

    @property
    def last4(self) -> str:
        return self.number[-4:]


@dataclasses.dataclass(frozen=True, slots=True)
class ChargeResult:
    #: ``Status.SUCCEEDED`` or ``Status.FAILED``: the status the payment takes
    status: Status
    failure_code: str | None = None
    reference: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == Status.SUCCEEDED


class PaymentProvider(Protocol):
    name: str

    async def charge(self, amount: int, currency: str, card: Card) -> ChargeResult:
        """Charge ``amount`` (minor units) of ``currency``; a decline is a result, not an error."""
        ...

    async def refund(self, reference: str) -> None:
        """Refund the whole charge ``reference``. Refunding the same charge twice is a no-op."""
        ...


class SandboxProvider:
    """The default provider: deterministic test cards, no network."""

    name = "sandbox"

    DECLINES: ClassVar[dict[str, str]] = {
        "4000000000000002": "card_declined",
        "4000000000009995": "insufficient_funds",
    }

    def __init__(self) -> None:
        self.charges: dict[str, int] = {}
        self.refunded: set[str] = set()

    async def charge(self, amount: int, currency: str, card: Card) -> ChargeResult:
        code = self.DECLINES.get(card.number)
        if code is not None:
            return ChargeResult(Status.FAILED, failure_code=code)
        reference = f"sbx_{secrets.token_hex(12)}"
        self.charges[reference] = amount
        return ChargeResult(Status.SUCCEEDED, reference=reference)

    async def refund(self, reference: str) -> None:
        # References from before a restart are unknown to this in-memory sandbox; accept them.
        self.refunded.add(reference)


#: The providers ``PAYMENT_PROVIDER`` may name: name -> a factory called once at startup.
#: A real provider registers here; a test registers its own under a name of its own.
PROVIDERS: dict[str, Callable[[], PaymentProvider]] = {"sandbox": SandboxProvider}


def make_provider(name: str) -> PaymentProvider:
    try:
        factory = PROVIDERS[name]
    except KeyError:
        raise ValueError(f"PAYMENT_PROVIDER: unknown provider {name!r}") from None
    return factory()

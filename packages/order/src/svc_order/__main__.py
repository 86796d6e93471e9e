"""``python -m svc_order`` (or ``svc-order``): settings from the environment, serve on 3003."""

from __future__ import annotations

from svc_core import run
from svc_order.app import create_app
from svc_order.settings import OrderSettings


def main() -> None:
    run(OrderSettings, create_app)


if __name__ == "__main__":
    main()

"""python -m svc_customer: settings from the environment, then serve."""

from __future__ import annotations

from svc_core import run
from svc_customer.app import create_app
from svc_customer.settings import CustomerSettings


def main() -> None:
    run(CustomerSettings, create_app)


if __name__ == "__main__":
    main()

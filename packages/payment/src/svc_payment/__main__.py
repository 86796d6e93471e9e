"""``python -m svc_payment``: settings from the environment, serve on PORT (default 3004)."""

from svc_core import run
from svc_payment.app import create_app
from svc_payment.settings import PaymentSettings


def main() -> None:
    run(PaymentSettings, create_app)


if __name__ == "__main__":
    main()

"""``python -m svc_payment`` (or ``svc-payment``): settings from the environment, serve on 3004."""

from __future__ import annotations

from svc_payment.manifest import service

main = service.main

if __name__ == "__main__":
    main()

"""``python -m svc_customer`` (``svc-customer``): settings from the environment, serve on 3002."""

from __future__ import annotations

from svc_customer.manifest import service

main = service.main

if __name__ == "__main__":
    main()

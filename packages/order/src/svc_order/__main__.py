"""``python -m svc_order`` (or ``svc-order``): settings from the environment, serve on 3003."""

from __future__ import annotations

from svc_order.manifest import service

main = service.main

if __name__ == "__main__":
    main()

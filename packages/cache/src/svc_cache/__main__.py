"""``python -m svc_cache`` (or ``svc-cache``): settings from the environment, serve on 3001."""

from __future__ import annotations

from svc_cache.manifest import service

main = service.main

if __name__ == "__main__":
    main()

"""Serve the web client: ``python -m svc_web`` (or ``svc-web``), port 3000."""

from __future__ import annotations

from svc_web.manifest import service

main = service.main

if __name__ == "__main__":
    main()

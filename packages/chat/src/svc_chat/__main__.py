"""``python -m svc_chat`` (or ``svc-chat``): settings from the environment, serve on 3005."""

from __future__ import annotations

from svc_chat.manifest import service

main = service.main

if __name__ == "__main__":
    main()

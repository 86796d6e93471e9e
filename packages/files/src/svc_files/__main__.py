"""``python -m svc_files`` (or ``svc-files``): settings from the environment, serve on 3006."""

from __future__ import annotations

from svc_files.manifest import service

main = service.main

if __name__ == "__main__":
    main()

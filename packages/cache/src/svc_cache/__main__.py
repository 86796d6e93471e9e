"""``python -m svc_cache``: settings from the environment, serve on port 3001."""

from __future__ import annotations

from svc_cache.app import CacheSettings, create_app
from svc_core import run


def main() -> None:
    run(CacheSettings, create_app)


if __name__ == "__main__":
    main()

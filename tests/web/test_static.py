"""The web service: the static client under /app/, its redirects, config and CSP header."""

from __future__ import annotations

import re
from typing import Any

import pytest

from svc_web.views import files

CSP = "Content-Security-Policy"


def directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


async def test_root_and_bare_app_redirect_to_the_client(client: Any) -> None:
    for path in ("/", "/app"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 302, path
        assert response.headers["Location"] == "/app/"


async def test_the_page_is_served_with_a_strict_csp(client: Any) -> None:
    response = await client.get("/app/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = directives(response.headers[CSP])
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'", "https://api.example.com", "wss://api.example.com"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert not any("unsafe" in v for values in policy.values() for v in values)
    html = await response.text()
    assert '<script type="module" src="js/main.js"></script>' in html


def test_no_inline_script_style_or_handler_in_any_file() -> None:
    html = files()["index.html"].decode()
    for match in re.finditer(r"<script\b[^>]*>(.*?)</script>", html, re.S):
        assert "src=" in match.group(0)
        assert not match.group(1).strip()
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)


def test_tokens_never_touch_web_storage() -> None:
    for name, body in files().items():
        if name.endswith(".js"):
            code = [line.split("//")[0] for line in body.decode().splitlines()]
            text = "\n".join(code)
            assert "localStorage" not in text, name
            assert "sessionStorage" not in text, name
            assert "document.cookie" not in text, name


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/app/app.css", "text/css"), ("/app/js/main.js", "text/javascript")],
)
async def test_assets_with_their_types_and_csp(client: Any, path: str, content_type: str) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert response.headers["Content-Type"] == f"{content_type}; charset=utf-8"
    assert CSP in response.headers
    assert await response.read() == files()[path.removeprefix("/app/")]


@pytest.mark.parametrize(
    "path", ["/app/nope.js", "/app/../pyproject.toml", "/app/js/../../views.py", "/app/%2e%2e/x"]
)
async def test_anything_else_is_a_404(client: Any, path: str) -> None:
    response = await client.get(path)
    assert response.status == 404


async def test_config_points_at_the_gateway_when_loaded_directly(client: Any) -> None:
    response = await client.get("/app/config.json")
    assert response.status == 200
    assert await response.json() == {"api_url": "https://api.example.com"}


async def test_config_is_same_origin_through_the_gateway(client: Any) -> None:
    response = await client.get("/app/config.json", headers={"X-Forwarded-Host": "example.com"})
    assert await response.json() == {"api_url": ""}


async def test_needs_no_token_and_no_store(client: Any) -> None:
    ready = await client.get("/ready")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {}
    assert (await client.get("/health")).status == 200
    assert (await client.get("/metrics")).status == 200

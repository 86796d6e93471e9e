"""The README's worked example is a real service: quoted verbatim, and it works."""

from __future__ import annotations

import re
from pathlib import Path

from examples.bookmarks import BookmarkSettings, service

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_quotes_the_example_verbatim_and_it_is_short():
    source = (ROOT / "examples" / "bookmarks.py").read_text()
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert source in blocks
    assert len(source.splitlines()) < 40


async def test_the_example_service_works(aiohttp_client, make_settings, auth_header):
    client = await aiohttp_client(service.create_app(make_settings(BookmarkSettings)))
    alice = auth_header(sub="alice")
    resp = await client.post(
        "/bookmarks", json={"url": "https://aiohttp.org", "title": " docs "}, headers=alice
    )
    assert resp.status == 201
    created = await resp.json()
    assert created["title"] == "docs"
    resp = await client.post(
        "/bookmarks", json={"url": "javascript:alert(1)", "title": "x"}, headers=alice
    )
    assert resp.status == 422
    assert (await client.get("/bookmarks")).status == 401
    page = await (await client.get("/bookmarks", headers=alice)).json()
    assert page == {"items": [created], "next_cursor": None}
    other = await (await client.get("/bookmarks", headers=auth_header(sub="bob"))).json()
    assert other["items"] == []

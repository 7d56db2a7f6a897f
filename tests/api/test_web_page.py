"""The web page's own files: the page names its icon, and the icon is where browsers look."""

from __future__ import annotations

import re

import httpx


async def test_the_page_and_the_favicon_address_both_give_the_icon(api: httpx.AsyncClient) -> None:
    page = await api.get("/")
    link = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml"', page.text)
    assert page.status_code == 200 and link is not None

    named = await api.get(link.group(1))
    guessed = await api.get("/favicon.ico")

    for icon in (named, guessed):
        assert icon.status_code == 200
        assert icon.headers["content-type"].startswith("image/svg+xml")
        assert icon.content.startswith(b"<svg")

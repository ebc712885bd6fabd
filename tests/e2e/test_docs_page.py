"""/docs works offline: Swagger UI's page and assets all come from the gateway itself."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bytespike.api import docs
from bytespike.app import create_app
from bytespike.ratelimit.memory import MemoryRateLimiter
from bytespike.settings import Settings

CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}
VENDORED = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
LICENCES = ("LICENSE", "NOTICE", "swagger-ui-bundle.js.LICENSE.txt")
REFERENCE = re.compile(r"""(?:src|href)="([^"]+)"|url: '([^']+)'""")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process; /docs reads no database, so none is migrated."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'bytespike.db'}")
    app = create_app(settings, limiter=MemoryRateLimiter(), background=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bytespike.test") as c:
        yield c


def referenced_urls(html: str) -> list[str]:
    """What the page makes the browser fetch: src/href attributes and Swagger UI's `url`."""
    return [attribute or spec for attribute, spec in REFERENCE.findall(html)]


async def test_docs_page_references_no_external_host(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert all(url.startswith("/") for url in referenced_urls(page.text))


async def test_every_asset_the_docs_page_references_is_served(
    client: httpx.AsyncClient,
) -> None:
    urls = referenced_urls((await client.get("/docs")).text)

    assert len(urls) == 4, urls  # the bundle, the stylesheet, the icon, the OpenAPI document
    for url in urls:
        answer = await client.get(url)
        assert answer.status_code == 200, url
        expected = CONTENT_TYPES[Path(url).suffix]
        assert answer.headers["content-type"].split(";")[0] == expected, url
        if url.startswith(docs.ASSETS_PATH):
            assert answer.content == (docs.ASSETS_DIR / Path(url).name).read_bytes()


async def test_the_vendored_assets_travel_with_their_licences(client: httpx.AsyncClient) -> None:
    shipped = sorted(path.name for path in docs.ASSETS_DIR.iterdir())

    assert shipped == sorted(VENDORED + LICENCES)
    assert "Apache License" in (docs.ASSETS_DIR / "LICENSE").read_text()
    assert (await client.get("/redoc")).status_code == 404  # ReDoc would load from a CDN
    assert (await client.get(f"{docs.ASSETS_PATH}/LICENSE")).status_code == 404

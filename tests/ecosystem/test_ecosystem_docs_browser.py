"""/docs and /redoc in a real headless Chromium against a live ``lossgrad serve``:
nothing requested outside 127.0.0.1, the four endpoints listed, and Swagger
UI's "Try it out" then "Execute" on the binary cross-entropy example answered
with a 200 whose loss is the core's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from ecosystem_browser import RecordingProxy, chromium, find_chromium, open_page
from ecosystem_helpers import LiveServer, clean_environment

from service import core

CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no Chromium binary (chromium, chromium-browser or google-chrome) on "
        "PATH: the docs pages are not tested in a browser here; .ci/run installs "
        "Debian's chromium package",
    ),
]

COMPUTE_PATHS = {
    "/v1/sigmoid",
    "/v1/softmax",
    "/v1/losses/binary-cross-entropy",
    "/v1/losses/cross-entropy",
}
COMPUTE_OPERATIONS = {"sigmoid", "softmax", "binary_cross_entropy", "cross_entropy"}
BCE = "#operations-losses-binary_cross_entropy"


@dataclass
class Visit:
    """What the browser showed and requested on one page."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    found: dict[str, Any] = field(default_factory=dict)


@dataclass
class Session:
    base_url: str
    docs: Visit
    redoc: Visit
    proxied: list[str]


def _requests_since(page: Any, first_event: int) -> list[dict[str, Any]]:
    """Each request the page sent after ``first_event``, and how it ended."""
    events = page.tools.events[first_event:]
    blocked = {
        e["params"]["requestId"]: e["params"].get("blockedReason")
        for e in events
        if e["method"] == "Network.loadingFailed"
    }
    return [
        {
            "url": e["params"]["request"]["url"],
            "blocked": blocked.get(e["params"]["requestId"]),
        }
        for e in events
        if e["method"] == "Network.requestWillBeSent"
    ]


async def _swagger_ui(page: Any, base_url: str) -> Visit:
    start = len(page.tools.events)
    await page.goto(f"{base_url}/docs")
    await page.wait_for("document.querySelectorAll('.opblock').length >= 4")
    visit = Visit()
    visit.found["paths"] = await page.evaluate(
        "[...document.querySelectorAll('.opblock-summary-path')]"
        ".map(e => e.getAttribute('data-path'))"
    )
    visit.found["title"] = await page.evaluate("document.title")

    # Open the operation, "Try it out", then "Execute" its example as it is.
    await page.evaluate(
        f"document.querySelector('{BCE} .opblock-summary-control').click()"
    )
    await page.wait_for(f"!!document.querySelector('{BCE} .try-out__btn')")
    await page.evaluate(f"document.querySelector('{BCE} .try-out__btn').click()")
    visit.found["example"] = await page.wait_for(
        f"document.querySelector('{BCE} textarea.body-param__text')?.value"
    )
    await page.wait_for(f"!!document.querySelector('{BCE} button.execute')")
    await page.evaluate(f"document.querySelector('{BCE} button.execute').click()")
    response = f"{BCE} .live-responses-table .response"
    visit.found["status"] = await page.wait_for(
        f"document.querySelector('{response} .response-col_status')?.textContent"
    )
    visit.found["body"] = await page.wait_for(
        f"document.querySelector('{response} .response-col_description .microlight')"
        "?.textContent"
    )
    visit.requests = _requests_since(page, start)
    return visit


async def _redoc(page: Any, base_url: str) -> Visit:
    start = len(page.tools.events)
    await page.goto(f"{base_url}/redoc")
    selector = '[data-section-id^="operation/"]'
    await page.wait_for(f"document.querySelectorAll('{selector}').length >= 4")
    # Let the search worker and late images start, so their requests are seen.
    await asyncio.sleep(1.0)
    visit = Visit()
    visit.found["sections"] = await page.evaluate(
        f"[...document.querySelectorAll('{selector}')]"
        ".map(e => e.getAttribute('data-section-id'))"
    )
    visit.found["text"] = await page.evaluate("document.body.innerText")
    visit.requests = _requests_since(page, start)
    return visit


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    assert CHROMIUM is not None
    folder = tmp_path_factory.mktemp("browser")
    profile = folder / "profile"
    profile.mkdir()
    server = LiveServer(folder, [], clean_environment())
    proxy = RecordingProxy()

    async def visit_both(websocket_url: str) -> tuple[Visit, Visit]:
        async with open_page(websocket_url) as page:
            docs = await _swagger_ui(page, server.base_url)
            redoc = await _redoc(page, server.base_url)
            return docs, redoc

    try:
        with chromium(CHROMIUM, profile, proxy.port) as websocket_url:
            docs, redoc = asyncio.run(
                asyncio.wait_for(visit_both(websocket_url), timeout=60)
            )
        yield Session(server.base_url, docs, redoc, list(proxy.requests))
    finally:
        proxy.close()
        server.stop()


def _stays_on(url: str, base_url: str) -> bool:
    parts, base = urlsplit(url), urlsplit(base_url)
    if parts.scheme in ("data", "about"):
        return True
    if parts.scheme == "blob":
        return _stays_on(url.removeprefix("blob:"), base_url)
    return (parts.scheme, parts.hostname, parts.port) == (
        "http",
        "127.0.0.1",
        base.port,
    )


@pytest.mark.parametrize("page", ["docs", "redoc"])
def test_the_page_sends_no_request_beyond_loopback(session, page):
    visit: Visit = getattr(session, page)
    assert visit.requests, "the page's requests were recorded"

    # A request the browser refused itself (the page's Content-Security-Policy)
    # never left it.
    sent_outside = [
        r["url"]
        for r in visit.requests
        if not _stays_on(r["url"], session.base_url) and not r["blocked"]
    ]
    assert sent_outside == []
    attempted_hosts = {
        urlsplit(r["url"]).hostname
        for r in visit.requests
        if not _stays_on(r["url"], session.base_url)
    }
    # The proxy also sees the browser's own background calls (updates, account
    # checks), which are no page's; none may be to a host the page tried.
    contacted = [
        line for line in session.proxied if any(h in line for h in attempted_hosts)
    ]
    assert contacted == []
    loaded = {urlsplit(r["url"]).path for r in visit.requests}
    script = (
        "/static/docs/swagger-ui-bundle.js"
        if page == "docs"
        else ("/static/docs/redoc.standalone.js")
    )
    assert {f"/{page}", script, "/openapi.json"} <= loaded


def test_swagger_ui_lists_the_four_endpoints(session):
    assert set(session.docs.found["paths"]) >= COMPUTE_PATHS
    assert session.docs.found["title"] == "lossgrad API"


def test_swagger_ui_try_it_out_on_the_binary_cross_entropy_example(session):
    example = json.loads(session.docs.found["example"])
    body = json.loads(session.docs.found["body"])

    assert session.docs.found["status"].strip() == "200"
    assert "loss" in body
    options = {k: example[k] for k in ("reduction", "hessian") if k in example}
    expected = core.binary_cross_entropy_with_logits(
        np.array(example["logits"], dtype=float),
        np.array(example["targets"], dtype=float),
        **options,
    )
    assert body["loss"] == pytest.approx(expected.loss, rel=1e-14)
    np.testing.assert_allclose(body["gradient"], expected.gradient, rtol=1e-14)


def test_redoc_lists_the_four_endpoints(session):
    operations = {
        section.removeprefix("operation/")
        for section in session.redoc.found["sections"]
    }

    assert operations >= COMPUTE_OPERATIONS
    for summary in ("Sigmoid", "Softmax", "Binary cross-entropy", "Cross-entropy"):
        assert summary in session.redoc.found["text"]

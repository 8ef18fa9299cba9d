"""The /docs and /redoc pages refer only to files this service serves itself.

The browser test proves the pages work; these checks run without a browser.
"""

from __future__ import annotations

import re

import pytest
from ecosystem_helpers import call
from fastapi import FastAPI

from service.app import create_app
from service.settings import Settings

ASSETS = {
    "/static/docs/swagger-ui-bundle.js": ("text/javascript", 500_000),
    "/static/docs/swagger-ui.css": ("text/css", 50_000),
    "/static/docs/redoc.standalone.js": ("text/javascript", 500_000),
    "/static/docs/favicon.svg": ("image/svg+xml", 100),
}
REFERENCE = re.compile(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""")


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(Settings())


@pytest.mark.parametrize(
    ("page", "script"),
    [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")],
)
def test_pages_refer_only_to_this_origin(app, page, script):
    response = call(app, "GET", page)

    assert response.status_code == 200
    html = response.text
    references = set(REFERENCE.findall(html))
    assert f"/static/docs/{script}" in references
    assert "/static/docs/favicon.svg" in references
    assert "/openapi.json" in references
    assert all(ref.startswith("/") and not ref.startswith("//") for ref in references)
    assert "http://" not in html and "https://" not in html
    assert "fonts.googleapis" not in html


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_pages_confine_the_browser_to_their_origin(app, page):
    policy = call(app, "GET", page).headers["content-security-policy"]

    directives = dict(
        (part.split()[0], part.split()[1:]) for part in policy.split("; ")
    )
    assert directives["default-src"] == ["'self'"]
    for name, sources in directives.items():
        for source in sources:
            assert source in ("'self'", "'unsafe-inline'", "data:", "blob:"), name


@pytest.mark.parametrize(("path", "expected"), sorted(ASSETS.items()))
def test_assets_are_served_from_installed_files(app, path, expected):
    media_type, minimum_size = expected

    response = call(app, "GET", path)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert len(response.content) >= minimum_size


def test_swagger_ui_never_calls_the_online_validator(app):
    html = call(app, "GET", "/docs").text

    assert '"validatorUrl": null' in html


@pytest.mark.parametrize(
    "path",
    ["/static/docs/nothing.js", "/static/docs/../app.py", "/static/docs/%2e%2e/app.py"],
)
def test_anything_else_under_the_assets_is_a_404_problem(app, path):
    response = call(app, "GET", path)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"

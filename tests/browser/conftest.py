"""One headless Debian chromium per session (Playwright drives it) and a page that records
what it loaded.

Every page is opened in a fresh browser context whose requests are checked: anything that
is not the page's own file, a ``data:``/``blob:`` URL or a server on this machine is
aborted and recorded, so a page that needs the network fails here the same way it would
offline, whether or not this machine has a network.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def is_local(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme in ("file", "data", "blob", "about"):
        return True
    return parsed.hostname in LOCAL_HOSTS


@dataclass
class PageLog:
    """What one page did: external requests (aborted), failures, console errors."""

    external: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return (
            [f"external request (needs the network): {u}" for u in self.external]
            + [f"failed request: {f}" for f in self.failed]
            + [f"console error: {e}" for e in self.errors]
        )


@dataclass
class OpenPage:
    page: object  # playwright.sync_api.Page
    log: PageLog

    def assert_clean(self, what: str) -> None:
        problems = self.log.problems()
        assert not problems, f"{what}:\n  " + "\n  ".join(problems)

    def screenshot(self, path: Path) -> Path:
        self.page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        assert path.stat().st_size > 0
        return path


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Debian's chromium is not installed ({CHROMIUM}); `make setup` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def open_page(browser) -> Iterator:
    """``open_page(url)`` -> :class:`OpenPage`, loaded (network idle) in a fresh context."""
    contexts = []

    def _open(url: str) -> OpenPage:
        context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
        contexts.append(context)
        log = PageLog()

        def route(r) -> None:
            if is_local(r.request.url):
                r.continue_()
            else:
                log.external.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.on(
            "console",
            lambda m: (
                log.errors.append(f"{m.text} ({m.location.get('url', '')})")
                if m.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda exc: log.errors.append(f"uncaught: {exc}"))
        page.on(
            "requestfailed",
            lambda r: None if not is_local(r.url) else log.failed.append(f"{r.url}: {r.failure}"),
        )
        page.on(
            "response",
            lambda r: log.failed.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None,
        )
        page.goto(url, wait_until="networkidle")
        return OpenPage(page, log)

    yield _open
    for context in contexts:
        context.close()

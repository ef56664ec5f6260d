"""Browser fixtures: one headless Chromium (Debian's, driven by Playwright's sync API) for the
package, a fresh browser context per page, pytest-django's live server on committed data.

Every page opened through these fixtures fails its test at teardown if the browser logged a
console error or an uncaught page error (a test that provokes one on purpose lists it in
`expected_console_errors`), and leaves a screenshot of its final state under
test-artifacts/screenshots/.
"""

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 10_000


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for the browser tests, closed when the last of them has run.

    Package scope, not session scope, on purpose: while Playwright's sync API is started, its
    asyncio loop counts as running in the main thread. Django then refuses ORM calls made from
    that thread (SynchronousOnlyOperation: the fixtures' factories and transactional_db's flush
    run there), and asgiref's async_to_sync refuses to run at all, so a session-wide Playwright
    would break the rest of the suite (e.g. tests/test_tenant_events.py). The loop is a
    greenlet-driven one that never runs Django code concurrently with the test, so allowing
    "async-unsafe" calls for exactly this window is safe; the variable is put back afterwards.
    The live server itself runs in its own thread and is not affected.
    """
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-test-deps (apt-get chromium).")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class _Opened:
    page: Page
    problems: list[str] = field(default_factory=list)


def _watch(page: Page) -> list[str]:
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console error at {message.location.get('url')}: {message.text}")

    def on_page_error(error: Error) -> None:
        problems.append(f"page error: {error}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    return problems


@pytest.fixture
def expected_console_errors() -> list[re.Pattern]:
    """Patterns of console errors a test provokes on purpose (e.g. a page answered 404)."""
    return []


@pytest.fixture
def server_url(live_server) -> str:
    """The server pages are opened on: pytest-django's live server (WSGI, in a thread). Modules
    that need websockets override this with `asgi_server` (tests/conftest.py)."""
    return live_server.url


@pytest.fixture
def new_page(
    browser, server_url, transactional_db, expected_console_errors, request
) -> Iterator[Callable[[], Page]]:
    """Opens a page in a new browser context (its own cookies: another person) on the server.
    At teardown: a screenshot of each page, then no console or page error allowed."""
    opened: list[_Opened] = []

    def open_page() -> Page:
        context = browser.new_context(base_url=server_url)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        opened.append(_Opened(page=page, problems=_watch(page)))
        return page

    yield open_page

    folder = request.config.rootpath / "test-artifacts" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "_", request.node.name)
    problems: list[str] = []
    for number, item in enumerate(opened, start=1):
        name = stem if number == 1 else f"{stem}-{number}"
        try:
            item.page.screenshot(path=folder / f"{name}.png", full_page=True)
        finally:
            item.page.context.close()
        problems += item.problems
    allowed = expected_console_errors
    problems = [p for p in problems if not any(a.search(p) for a in allowed)]
    assert not problems, "the browser reported errors:\n" + "\n".join(problems)


@pytest.fixture
def page(new_page) -> Page:
    """A page in a fresh browser context; its screenshot is <test-name>.png."""
    return new_page()


@pytest.fixture
def screenshot(request) -> Callable[[Page, str], None]:
    """Saves a page as it is now under test-artifacts/screenshots/<test-name>-<label>.png (for
    pages a flow passes through; each page's final state is saved anyway)."""
    folder = request.config.rootpath / "test-artifacts" / "screenshots"

    def save(page: Page, label: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^\w.-]+", "_", request.node.name)
        # The viewport only: clicking right after a full-page capture missed its target in
        # headless Chromium (the capture resizes the page and back).
        page.screenshot(path=folder / f"{stem}-{label}.png")

    return save

"""Fixtures: one server with a temporary store and one headless Chromium page
per test module; every request the page makes is logged."""

import pytest
from playwright.sync_api import sync_playwright

from harness import RequestLog, Server, launch


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture(scope="module")
def session(browser, server):
    """A page at 1280×800 and the log of every URL it requested."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(30_000)
    log = RequestLog(page)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page, log, errors
    context.close()
    assert log.urls, "the page made no requests"
    assert log.foreign(server.url) == [], f"requests to other hosts: {log.foreign(server.url)}"
    assert errors == [], f"script errors: {errors}"

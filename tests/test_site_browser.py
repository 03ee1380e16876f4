"""The rendered tutorial in a real headless browser: the index loads, a link is followed, figures display.

Needs Debian's ``chromium`` (``apt-get install chromium``; ``make check-site`` installs it and runs this
test). Without a browser the test is skipped and says so.
"""
from __future__ import annotations

import shutil

import pytest

from interp_helpers.tutorial import notebook_paths, render_site

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make check-site installs it and runs this test)"
)
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync"]
_LOADED_IMAGES = "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length"


@pytest.mark.timeout(180)
def test_index_links_to_pages_whose_figures_display(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    index = render_site(notebook_paths(), site=tmp_path / "site")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=_FLAGS)
        try:
            page = browser.new_page()
            # no network: every request that leaves file:// is aborted, so figures must be embedded
            page.route("http*://**", lambda route: route.abort())
            page.goto(index.as_uri())
            assert "Interpreting image classifiers" in page.title()
            links = page.locator("ol.toc a")
            assert links.count() == len(notebook_paths())
            assert page.evaluate(_LOADED_IMAGES) == len(notebook_paths())  # one thumbnail each
            first = links.first.get_attribute("href")
            links.first.click()
            page.wait_for_load_state("load")
            assert page.url.endswith(first)
            shown = page.evaluate(_LOADED_IMAGES)
            assert shown >= 1, "the notebook page shows no figure"
            broken = page.evaluate("[...document.images].filter(i => i.naturalWidth === 0).length")
            assert broken == 0
        finally:
            browser.close()

"""The rendered tutorial in a real headless browser, offline: the index loads with its thumbnails, every page
shows its figures, typesets its formulas with the local MathJax, links to its neighbours, and keeps solutions
collapsed; the API page loads.

Needs Debian's ``chromium`` (``apt-get install chromium``; ``make check-site`` installs it and runs this
test). Without a browser the test is skipped and says so.
"""
from __future__ import annotations

import re
import shutil

import nbformat
import pytest

from tools.tutorial import notebook_paths, render_site

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make check-site installs it and runs this test)"
)
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync"]
_LOADED_IMAGES = "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length"
_BROKEN_IMAGES = "[...document.images].filter(i => i.naturalWidth === 0).length"
_MATH = "document.querySelectorAll('.MathJax, .MathJax_Display, .MathJax_CHTML, .MathJax_SVG, mjx-container').length"
_MATH_SOURCE = re.compile(r"\$\$.+?\$\$|(?<![\\$])\$[^$\n]+\$", re.DOTALL)


def _has_math(path) -> bool:
    nb = nbformat.read(path, as_version=4)
    return any(c.cell_type == "markdown" and _MATH_SOURCE.search(c.source) for c in nb.cells)


@pytest.mark.timeout(600)
def test_site_reads_offline_in_a_browser(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    notebooks = notebook_paths()
    index = render_site(notebooks, site=tmp_path / "site")
    requested: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=_FLAGS)
        try:
            page = browser.new_page()

            def refuse(route):  # no network: every request that leaves file:// is recorded and aborted
                requested.append(route.request.url)
                route.abort()

            page.route("http*://**", refuse)
            page.goto(index.as_uri())
            assert "Interpreting image classifiers" in page.title()
            links = page.locator("ol.toc a")
            assert links.count() == len(notebooks)
            assert page.evaluate(_LOADED_IMAGES) == len(notebooks)  # one thumbnail each
            first = links.first.get_attribute("href")
            links.first.click()
            page.wait_for_load_state("load")
            assert page.url.endswith(first)

            for path in notebooks:
                page.goto((index.parent / f"{path.stem}.html").as_uri())
                page.wait_for_load_state("load")
                name = path.name
                assert page.evaluate(_LOADED_IMAGES) >= 1, f"{name}: the page shows no figure"
                assert page.evaluate(_BROKEN_IMAGES) == 0, f"{name}: a figure does not display"
                # MathJax marks the body when it has typeset the page
                page.wait_for_selector("body[data-math='typeset']", state="attached", timeout=120_000)
                visible = page.evaluate("document.body.innerText")
                assert "$$" not in visible, f"{name}: raw $$ formulas in the visible text"
                assert "Math Processing Error" not in visible, f"{name}: MathJax failed on a formula"
                if _has_math(path):
                    assert page.evaluate(_MATH) > 0, f"{name}: formulas in the notebook, none typeset on the page"
                nav = page.locator("nav.series").first
                assert nav.locator("a[rel=prev]").count() == 1 and nav.locator("a[rel=next]").count() == 1
                assert page.evaluate("[...document.querySelectorAll('details.solution')].every(d => !d.open)")

            page.goto((index.parent / "api.html").as_uri())
            assert page.locator("h3 code").count() > 10, "the API page lists no helpers"
        finally:
            browser.close()
    assert not requested, f"the site tried to reach the network: {requested[:5]}"

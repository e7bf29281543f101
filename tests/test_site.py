"""The results site in a real browser (Debian's headless Chromium through selenium; ``make test-browser``):
the index loads without console errors, every link and image on every page resolves to a file of the site,
the outcome and source filters hide the other rows, and a screenshot is a real picture of the page.

Marked ``browser``: in neither tier of ``make test``; skipped, with the reason, where no browser is found
(failed instead under ``make test-browser``, which has just made sure the browser is there)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pandas as pd
import pytest

from normrepro.site import browser as site_browser
from normrepro.site import build_site
from normrepro.site.experiments import experiment_folders

pytestmark = pytest.mark.browser

RESULTS = Path(__file__).resolve().parents[1] / "results"
LINKS = "return [...document.querySelectorAll('a[href]')].map(a => a.href)"
IMAGES = "return [...document.querySelectorAll('img[src]')].map(i => [i.src, i.complete ? i.naturalWidth : 0])"
VISIBLE = "return [...document.querySelectorAll('#claims tbody tr')].filter(r => r.offsetParent !== null)" \
          ".map(r => [r.dataset.outcome, r.dataset.sources])"


@pytest.fixture(scope="module", autouse=True)
def browser_available():
    """Skip without a browser, unless NORMREPRO_REQUIRE_BROWSER is set (make test-browser sets it once the
    browser is installed), where a missing piece is a failure, not a silent skip."""
    why = site_browser.missing()
    if why and os.environ.get("NORMREPRO_REQUIRE_BROWSER"):
        pytest.fail(f"NORMREPRO_REQUIRE_BROWSER is set, but {why}")
    if why:
        pytest.skip(f"no browser: {why}")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    build_site(RESULTS, out)
    return out.resolve()


@pytest.fixture(scope="module")
def driver():
    d = site_browser.open_browser()
    yield d
    d.quit()


def _errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def _file(url: str) -> tuple[Path, str]:
    parts = urlsplit(url)
    assert parts.scheme == "file", f"not a file of the site: {url}"
    return Path(unquote(parts.path)), parts.fragment


def test_index_loads_without_console_errors(driver, site):
    driver.get((site / "index.html").as_uri())
    assert driver.title == "normrepro results"
    assert _errors(driver) == []
    assert len(driver.execute_script(VISIBLE)) == sum(len(pd.read_csv(f / "verdicts.csv"))
                                                      for f in experiment_folders(RESULTS))


def test_every_link_and_image_on_every_page_resolves(driver, site):
    pages, seen, anchors = [site / "index.html"], set(), []
    while pages:
        page = pages.pop()
        if page in seen:
            continue
        seen.add(page)
        driver.get(page.as_uri())
        assert _errors(driver) == [], page
        for url in driver.execute_script(LINKS):
            path, fragment = _file(url)
            assert path.is_file() and path.is_relative_to(site), f"{page}: broken link {url}"
            if fragment:
                anchors.append((path, fragment))
            if path.suffix == ".html":
                pages.append(path)
        for url, width in driver.execute_script(IMAGES):
            path, _ = _file(url)
            assert path.is_file() and path.is_relative_to(site) and width > 0, f"{page}: broken image {url}"
    assert {p.parent.name for p in seen} >= {f.name for f in experiment_folders(RESULTS)}  # every page visited
    for path, fragment in anchors:
        assert f'id="{fragment}"' in path.read_text(encoding="utf-8"), f"no #{fragment} in {path}"


def test_filters_hide_the_other_rows(driver, site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.get((site / "index.html").as_uri())
    total = len(driver.execute_script(VISIBLE))
    outcome = Select(driver.find_element(By.ID, "outcome-filter"))
    source = Select(driver.find_element(By.ID, "source-filter"))
    for value in ("reproduced", "inconclusive", "not testable here"):
        outcome.select_by_value(value)
        rows = driver.execute_script(VISIBLE)
        assert rows and {o for o, _ in rows} == {value}, value
        assert driver.find_element(By.ID, "shown").text == f"{len(rows)} of {total} claims shown"
    outcome.select_by_value("inconclusive")
    source.select_by_value("BN")
    rows = driver.execute_script(VISIBLE)
    assert rows and all(o == "inconclusive" and "BN" in s.split() for o, s in rows)
    outcome.select_by_value("")
    source.select_by_value("")
    assert len(driver.execute_script(VISIBLE)) == total
    assert _errors(driver) == []


def test_screenshot_is_a_real_picture(driver, site, tmp_path):
    from PIL import Image

    shot = site_browser.screenshot(driver, site / "index.html", tmp_path / "index.png", max_height=1200)
    assert shot.stat().st_size > 50_000
    with Image.open(shot) as img:
        assert img.size[0] >= 1000 and img.size[1] >= 800
        colors = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is None or len(colors) > 50  # text, badges and table lines, not a blank page

"""Headless Chromium through selenium, for the site's browser test and its docs screenshot.

Debian's packages (``make browser-deps``: chromium, chromium-driver) put the browser and its driver at
/usr/bin/chromium and /usr/bin/chromedriver; NORMREPRO_CHROMIUM / NORMREPRO_CHROMEDRIVER override them.
selenium is a dev dependency and imported only when a browser is asked for."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

WINDOW = (1400, 1000)


def browser_paths() -> tuple[str | None, str | None]:
    """(chromium, chromedriver), each None when it cannot be found."""
    chromium = os.environ.get("NORMREPRO_CHROMIUM")
    chromium = shutil.which(chromium) if chromium else shutil.which("chromium") or shutil.which("chromium-browser")
    return chromium, shutil.which(os.environ.get("NORMREPRO_CHROMEDRIVER") or "chromedriver")


def missing() -> str | None:
    """Why no browser can be started here, or None when one can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    chromium, driver = browser_paths()
    if not chromium or not driver:
        return "chromium or chromedriver not found (make browser-deps installs Debian's chromium, chromium-driver)"
    return None


def open_browser(window: tuple[int, int] = WINDOW):
    """A headless Chromium that keeps the page's console messages (``driver.get_log('browser')``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--hide-scrollbars", "--no-first-run", f"--window-size={window[0]},{window[1]}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def screenshot(driver, page: Path, out: Path, width: int = WINDOW[0], max_height: int = 2400) -> Path:
    """A PNG of ``page`` at ``width``, as tall as its content (up to ``max_height``)."""
    driver.get(Path(page).resolve().as_uri())
    height = min(max_height, driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(width, height)
    out.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(out))
    return out

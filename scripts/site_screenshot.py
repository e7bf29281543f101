"""Screenshot of the results site's index (docs/site-index.png, ``make site-screenshot``): the site is built
from results/ into a temporary folder and photographed in headless Chromium by the same code the browser
test uses (normrepro.site.browser).

    python scripts/site_screenshot.py [OUT.png] [--results results] [--height 1300]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from normrepro.site import browser, build_site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("docs/site-index.png"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--height", type=int, default=1300, help="the most pixels of the page to show")
    args = parser.parse_args(argv)
    if why := browser.missing():
        print(f"site_screenshot: {why}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        build_site(args.results, Path(tmp) / "site")
        driver = browser.open_browser()
        try:
            browser.screenshot(driver, Path(tmp) / "site" / "index.html", args.out, max_height=args.height)
        finally:
            driver.quit()
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A static, self-contained HTML site of the committed results (``make site``): an index of every claim
of every experiment, filterable by outcome and by source, and one page per experiment.

experiments.py reads results/<id>/ (pandas), report_md.py takes REPORT.md apart, markup.py renders its
small Markdown subset with everything escaped, pages.py writes the HTML from templates/, build.py puts the
folder together, browser.py drives headless Chromium for the test and the docs screenshot. Nothing here
imports torch or the training code."""

from normrepro.site.build import build_site

__all__ = ["build_site"]

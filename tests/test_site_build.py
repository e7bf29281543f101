"""The results site's builder without a browser: every experiment gets a page, the index lists every
claim, every text from results/ is escaped, the site is self-contained, and nothing imports torch."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from normrepro.analysis.report import deviations_table
from normrepro.site import build_site, markup
from normrepro.site.build import NotASiteFolder
from normrepro.site.experiments import arms, experiment_folders, sources
from normrepro.site.report_md import parse_report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
ATTR = re.compile(r'(?:href|src)="([^"]*)"')
EVIL = '<script>alert("x")</script>'


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    build_site(RESULTS, out)
    return out


def test_every_experiment_gets_a_page_and_every_claim_a_row(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    folders = experiment_folders(RESULTS)
    assert len(folders) >= 20
    n_claims = 0
    for folder in folders:
        assert (site / folder.name / "index.html").is_file(), folder.name
        assert f'href="{folder.name}/index.html"' in index
        for claim in pd.read_csv(folder / "verdicts.csv").itertuples():
            assert f'href="{folder.name}/index.html#claim-{claim.id}"' in index
            assert f'id="claim-{claim.id}"' in (site / folder.name / "index.html").read_text(encoding="utf-8")
            n_claims += 1
    assert index.count("<tr data-outcome=") == n_claims
    assert not (site / "README.md").exists()  # results/README.md is the index, not an experiment


def test_every_local_link_and_image_exists_and_nothing_is_remote(site):
    for page in site.rglob("*.html"):
        for target in ATTR.findall(page.read_text(encoding="utf-8")):
            assert not re.match(r"[a-z]+://|//", target), f"{page}: remote {target}"
            if target.startswith(("#", "data:")):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.is_file() and path.is_relative_to(site.resolve()), f"{page}: {target}"


def _fake_results(root: Path) -> Path:
    exp = root / "evil"
    (exp / "figures").mkdir(parents=True)
    (exp / "figures" / "fig.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    pd.DataFrame([{"id": "c1", "text": f"text {EVIL}", "expect": "a - b > 0", "a": 1.0, "b": 0.5, "effect": 0.5,
                   "lo": 0.1, "hi": 0.9, "half_width": 0.4, "method": "paired t", "n_a": 5, "n_b": 5,
                   "verdict": "reproduced", "reason": f"why {EVIL}", "paper": f"[BN] {EVIL}", "metric": "acc"}]
                 ).to_csv(exp / "verdicts.csv", index=False)
    deviations = "\n".join(deviations_table([{"what": EVIL, "paper": "a | b", "here": "c", "effect": "d"}]))
    (exp / "REPORT.md").write_text(f"# `evil`\n\nDescription {EVIL} with `code <b>`.\n\n*Scale `cpu`.*\n\n"
                                   f"## Verdicts\n\n| x |\n|---|\n| y |\n\nRule {EVIL}.\n\n## Setup\n\nGrid {EVIL}\n\n"
                                   f"{deviations}\n## Notes\n\nNote {EVIL}\n\n## Figures\n\n"
                                   f"![fig](figures/fig.png)\n\n*Caption {EVIL}*\n\n"
                                   "![gone](figures/gone.png)\n\n## Files\n\nfiles\n", encoding="utf-8")
    return root


def test_all_text_is_escaped(tmp_path):
    out = tmp_path / "site"
    build_site(_fake_results(tmp_path / "results"), out)
    for page in (out / "index.html", out / "evil" / "index.html"):
        html = page.read_text(encoding="utf-8")
        assert "<script>alert" not in html and "<b>" not in html
    exp = (out / "evil" / "index.html").read_text(encoding="utf-8")
    for where in ("Description", "text", "why", "Rule", "Grid", "Note", "Caption"):
        assert f"{where} &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in exp, where
    assert "<code>code &lt;b&gt;</code>" in exp
    assert "<td>a | b</td>" in exp  # the deviations table's escaped pipe stays inside its cell
    assert 'src="figures/fig.png"' in exp and "gone.png" not in exp  # a missing figure is not linked
    assert (out / "evil" / "figures" / "fig.png").is_file()


def test_rebuild_replaces_the_site_but_never_clears_a_foreign_folder(tmp_path):
    results = _fake_results(tmp_path / "results")
    out = tmp_path / "site"
    build_site(results, out)
    (out / "stale.html").write_text("old")
    build_site(results, out)
    assert not (out / "stale.html").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(NotASiteFolder):
        build_site(results, foreign)
    assert (foreign / "keep.txt").read_text() == "mine"


def test_report_sections_figures_and_provenance():
    rep = parse_report("# `x`\n\nOne.\n\n*Scale `cpu`.*\n\n## Setup\n\nGrid\n\n## Deviations from the paper\n\n"
                       "| a |\n|---|\n| b |\n\n## Figures\n\n![f](figures/f.png)\n\n*Cap.*\n")
    assert (rep.title, rep.description, rep.provenance) == ("x", "One.", ["Scale `cpu`."])
    assert rep.section("Setup") == "Grid" and rep.section("Deviations").startswith("| a |")
    assert [(f.src, f.caption) for f in rep.figures] == [("figures/f.png", "Cap.")]
    assert rep.section("Notes") == ""


def test_markup_subset():
    assert markup.inline("**b** *i* `c*d*` <x>") == "<strong>b</strong> <em>i</em> <code>c*d*</code> &lt;x&gt;"
    assert markup.inline("a * b * c") == "a * b * c"
    assert markup.blocks("p1\nstill\n\n| h |\n|---|\n| v \\| w |") == (
        '<p>p1 still</p>\n<table class="md"><thead><tr><th>h</th></tr></thead>'
        "<tbody><tr><td>v | w</td></tr></tbody></table>")


def test_sources_and_arms():
    assert sources("[WJ] Sec. 4; [GN] Fig. 1, [WJ]") == ["WJ", "GN"]
    assert sources(float("nan")) == ["none"] and sources("(control)") == ["none"]
    row = pd.DataFrame([{"n_a": 3, "n_b": 0, "b": float("nan")}]).iloc[0]
    assert arms(row) == "3/–"


def test_the_builder_imports_neither_torch_nor_the_training_code(tmp_path):
    code = ("import sys; from normrepro.site.__main__ import main; main(['--results', sys.argv[1], '--out', "
            "sys.argv[2]]); bad = [m for m in ('torch', 'normrepro.train') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code, str(_fake_results(tmp_path / "r")), str(tmp_path / "s")],
                         capture_output=True, text=True, env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""})
    assert run.returncode == 0, run.stderr + run.stdout

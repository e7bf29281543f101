"""``build_site(results_root, out_dir)``: the whole static site in ``out_dir`` (index.html, style.css, and
``<id>/index.html`` with its figures and CSV files for every experiment). Every link is relative and every
file a page needs is copied in, so the folder works offline, opened from disk or served as it is."""

from __future__ import annotations

import shutil
from pathlib import Path

from normrepro.site.experiments import load_experiments
from normrepro.site.pages import DATA_FILES, experiment_page, index_page, template

MARKER = ".normrepro-site"  # written into the output folder, so a rebuild only ever deletes a site it made


class NotASiteFolder(RuntimeError):
    """The output folder exists, is not empty and was not made by build_site: refuse to clear it."""


def _clear(out_dir: Path) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / MARKER).is_file():
            raise NotASiteFolder(f"{out_dir} is not empty and holds no {MARKER}: not clearing it")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("made by normrepro.site; rebuilt from scratch by make site\n")


def build_site(results_root: Path, out_dir: Path) -> list[Path]:
    """Write the site; returns the pages written (the index first)."""
    results_root, out_dir = Path(results_root), Path(out_dir)
    experiments = load_experiments(results_root)
    _clear(out_dir)
    (out_dir / "style.css").write_text(template("style.css"), encoding="utf-8")
    pages = [out_dir / "index.html"]
    pages[0].write_text(index_page(experiments), encoding="utf-8")
    for exp in experiments:
        folder = out_dir / exp.id
        (folder / "figures").mkdir(parents=True, exist_ok=True)
        for fig in exp.figures:
            shutil.copyfile(exp.folder / fig.src, folder / fig.src)
        for name in DATA_FILES:
            if (exp.folder / name).is_file():
                shutil.copyfile(exp.folder / name, folder / name)
        page = folder / "index.html"
        page.write_text(experiment_page(exp), encoding="utf-8")
        pages.append(page)
    return pages

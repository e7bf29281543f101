"""The experiments the site shows, read from ``results/<id>/``: verdicts.csv (pandas), REPORT.md and the
figure files. The same folders as results/README.md: no other scale's folder, no hidden staging folder."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from normrepro.analysis.claims import OUTCOMES
from normrepro.analysis.report import SCALE_SUFFIXES
from normrepro.site.report_md import Figure, Report, read_report

_SOURCE = re.compile(r"\[([A-Za-z][A-Za-z0-9]*)\]")
NO_SOURCE = "none"


@dataclass
class Experiment:
    id: str
    folder: Path
    report: Report
    verdicts: pd.DataFrame
    figures: list[Figure] = field(default_factory=list)  # only files that exist, the report's order first

    def counts(self) -> dict[str, int]:
        got = self.verdicts["verdict"].value_counts() if len(self.verdicts) else {}
        return {k: int(got.get(k, 0)) for k in OUTCOMES}


def experiment_folders(results_root: Path) -> list[Path]:
    return [f.parent for f in sorted(Path(results_root).glob("*/verdicts.csv"))
            if not f.parent.name.startswith(".") and not f.parent.name.endswith(SCALE_SUFFIXES)]


def load_experiment(folder: Path) -> Experiment:
    report = read_report(folder / "REPORT.md")
    figs = [f for f in report.figures if (folder / f.src).is_file()]
    named = {f.src for f in figs}
    figs += [Figure(src=f"figures/{p.name}", name=p.stem) for p in sorted((folder / "figures").glob("*.png"))
             if f"figures/{p.name}" not in named]
    return Experiment(folder.name, folder, report, pd.read_csv(folder / "verdicts.csv"), figs)


def load_experiments(results_root: Path) -> list[Experiment]:
    return [load_experiment(folder) for folder in experiment_folders(results_root)]


def text(value) -> str:
    """A cell as text: a CSV's empty cell comes back as NaN."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def number(value) -> str:
    """Four significant digits, as REPORT.md prints them; '–' for a missing number."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def interval(row) -> str:
    return f"{number(row.effect)} [{number(row.lo)}, {number(row.hi)}]"


def arms(row) -> str:
    """Seeds per arm, 'a/b'; a one-arm claim (no b) shows '–' for b."""
    n_b = int(row.n_b) if text(row.n_b) else 0
    return f"{int(row.n_a)}/{n_b if n_b or text(row.b) else '–'}"


def sources(paper) -> list[str]:
    """The bracketed source tags a ``paper`` cell cites ([BN], [S0] ...), or ``[NO_SOURCE]``."""
    return list(dict.fromkeys(_SOURCE.findall(text(paper)))) or [NO_SOURCE]


def slug(outcome: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", outcome.lower()).strip("-")

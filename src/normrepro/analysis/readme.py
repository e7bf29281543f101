"""The repository README's verdict block: every cpu-scale claim on one short line (claim, source, the paper's
number, our effect with its 95% interval and seeds, the outcome), rendered from results/*/verdicts.csv.

Only ``scripts/update_readme_verdicts.py`` calls this: the analysis never writes the README."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pandas as pd

from normrepro.analysis.claims import MIN_SEEDS, OUTCOMES
from normrepro.analysis.report import _cell, _text, _verdict_files, outcome_counts
from normrepro.errors import UserError

README_START, README_END = "<!-- verdicts:start -->", "<!-- verdicts:end -->"
CLAIM_CHARS, SOURCE_CHARS, PAPER_CHARS = 44, 20, 30  # the README's table: one short line per claim
# leading citation tags ("[S3]; [LN]") and their section ("Sec. 6"), then what the paper says
_SOURCE = re.compile(r"^(\[[^\]]+\](?:[ ,;]+\[[^\]]+\])*(?: [^:;(]*[^:;( ])?)\s*[:;]?\s*(.*)$")


def _short(text, limit: int) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters (ending in an ellipsis)."""
    text = " ".join(_text(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:(") + "…"


def split_paper(paper) -> tuple[str, str]:
    """A claim's ``paper`` field as (source, the paper's number or shape): '[BN] Fig. 1a: ~0.98' ->
    ('[BN] Fig. 1a', '~0.98'); '-' for a part that is missing."""
    text = " ".join(_text(paper).split())
    m = _SOURCE.match(text)
    source, said = (m.group(1), m.group(2)) if m else ("", text)
    return source or "-", said or "-"


def _decimals(half_width, effect) -> int | None:
    """Decimals that show the interval's half-width to two significant digits (None: use exponents)."""
    scale = half_width if half_width > 0 else abs(effect)
    if scale == 0:
        return 0
    if scale < 1e-5:
        return None
    return min(6, max(0, 1 - math.floor(math.log10(scale))))


def effect_with_interval(v) -> str:
    """'+0.012 [0.004, 0.020]': the effect, signed, and its 95% interval, at one precision."""
    if v.effect is None or math.isnan(v.effect):
        return "-"
    d = _decimals(v.half_width if not math.isnan(v.half_width) else 0.0, v.effect)
    spec = ".2g" if d is None else f".{d}f"

    def num(x, sign=""):
        if math.isnan(x):
            return "-"
        return format((round(x, d) if d is not None else x) + 0.0, sign + spec)  # rounded, + 0.0: no "-0"

    return f"{num(v.effect, '+')} [{num(v.lo)}, {num(v.hi)}]"


def claim_rows(results_root: Path, link_prefix: str = "") -> list[str]:
    """One short table row per claim of every cpu-scale experiment, the experiment's link on its first row."""
    rows = ["| experiment | claim | source | paper | ours: effect [95% CI] | n | outcome |",
            "|---|---|---|---|---|---|---|"]
    for verdict_file in _verdict_files(results_root):
        exp_id = verdict_file.parent.name
        link = f"[`{exp_id}`]({link_prefix}{exp_id}/REPORT.md)"
        v = pd.read_csv(verdict_file)
        if v.empty:
            rows.append(f"| {link} | (no claims: a supporting sweep) | - | - | - | - | - |")
        for i, r in enumerate(v.itertuples()):
            source, said = split_paper(r.paper)
            n = f"{int(r.n_a)}/{int(r.n_b)}" if r.n_b else f"{int(r.n_a)}"  # one-arm claims: n of a
            rows.append(f"| {link if i == 0 else ''} | {_cell(_short(r.text, CLAIM_CHARS))} | "
                        f"{_cell(_short(source, SOURCE_CHARS))} | {_cell(_short(said, PAPER_CHARS))} | "
                        f"{effect_with_interval(r)} | {n} | {r.verdict} |")
    return rows


def totals_line(results_root: Path) -> str:
    """'N claims in M experiments: ...' with each outcome counted, and how many are undecided for seeds."""
    frames = [pd.read_csv(f) for f in _verdict_files(results_root)]
    v = pd.concat(frames) if frames else pd.DataFrame(columns=["verdict", "reason"])
    counts = outcome_counts(v)
    few = int(v["reason"].fillna("").astype(str).str.startswith(f"n < {MIN_SEEDS} ").sum()) if len(v) else 0
    outcomes = ", ".join(f"{counts[k]} {k}" + (f" ({few} of them for n < {MIN_SEEDS} seeds in an arm)"
                                               if k == "inconclusive" and few else "") for k in OUTCOMES)
    return f"{len(v)} claims in {len(frames)} experiment{'s' * (len(frames) != 1)}: {outcomes}."


class ReadmeMarkersMissing(UserError):
    """The README has no verdict block to rewrite."""


def update_readme_block(readme: Path, results_root: Path) -> bool:
    """Rewrite the block between README_START and README_END of ``readme`` with the outcome totals and one
    row per claim (links relative to the README). Returns whether the text changed. Called by
    scripts/update_readme_verdicts.py only: the analysis itself never writes the README."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ReadmeMarkersMissing(f"{readme} has no {README_START} ... {README_END} block; add the two marker "
                                   "lines where the verdict table goes")
    prefix = Path(os.path.relpath(results_root.resolve(), readme.resolve().parent)).as_posix() + "/"
    block = "\n".join([README_START, totals_line(results_root), "", *claim_rows(results_root, prefix), README_END])
    new = text[:start] + block + text[end + len(README_END):]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text

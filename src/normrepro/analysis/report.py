"""Writes ``results/<id>/``: summary.csv, metrics.csv.gz, verdicts.csv, figures/ and REPORT.md, and
re-indexes ``results/README.md`` from every experiment's verdicts."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pandas as pd

SETUP_KEYS = ("data.name", "data.train_limit", "data.order", "data.augment", "model.arch", "model.widths",
              "model.stages", "model.width_mult", "model.depth", "model.activation", "model.placement",
              "model.init", "model.init_std", "norm.kind", "optim.name", "optim.lr", "optim.momentum",
              "optim.schedule.kind", "optim.grad_clip", "train.steps", "train.batch_size", "train.eval_every",
              "model.cell", "model.hidden", "model.pixels_per_step", "model.permute", "model.h0_noise",
              "model.gamma_init", "model.recurrent_init", "data.seq_len")
# architecture-specific keys, shown only for their architectures
_RNN = ("rnn", "char_rnn")
ARCH_KEYS = {"model.widths": ("mlp",), "model.stages": ("vgg",), "model.width_mult": ("vgg",),
             "model.depth": ("resnet",), "model.cell": _RNN, "model.hidden": _RNN, "model.h0_noise": _RNN,
             "model.gamma_init": _RNN, "model.recurrent_init": _RNN, "model.pixels_per_step": ("rnn",),
             "model.permute": ("rnn",), "data.seq_len": ("char_rnn",), "model.activation": ("mlp", "vgg", "resnet"),
             "model.placement": ("mlp", "vgg", "resnet"), "model.init": ("mlp", "vgg", "resnet"),
             "model.init_std": ("mlp", "vgg", "resnet")}


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _cell(text) -> str:
    """Table-safe text: a '|' inside a cell (as in |skew|) would split it."""
    return str(text).replace("|", "\\|")


def verdict_table(verdicts: pd.DataFrame) -> str:
    lines = ["| claim | expected | a | b | effect a-b [95% CI] | n (a/b) | paper | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for v in verdicts.itertuples():
        ci = f"{_fmt(v.effect)} [{_fmt(v.lo)}, {_fmt(v.hi)}]"
        lines.append(f"| **{v.id}**: {_cell(v.text)} (`{v.metric}`) | {_cell(v.expect)} | {_fmt(v.a)} | "
                     f"{_fmt(v.b)} | {ci} | {v.n_a}/{v.n_b} | {_cell(v.paper or '-')} | **{v.verdict}** |")
    return "\n".join(lines)


def write_report(out_dir: Path, exp: dict, collected, verdicts: pd.DataFrame, figures: list[tuple[str, str]],
                 scale: str, command: str) -> Path:
    runs = collected.runs
    shas = sorted(set(runs.get("git_sha", pd.Series(dtype=str)).dropna()))
    wall = runs["wall_time_s"].sum() if "wall_time_s" in runs else float("nan")
    grid = {c: sorted(map(str, runs[c].dropna().unique())) for c in collected.grid_columns if c in runs}
    archs = {str(a) for a in runs.get("model.arch", [collected.fixed.get("model.arch")])}
    setup = {k: collected.fixed[k] for k in SETUP_KEYS
             if k in collected.fixed and set(ARCH_KEYS.get(k, archs)) & archs}
    statuses = runs["status"].value_counts().to_dict() if "status" in runs else {}
    lines = [
        f"# `{exp['id']}`",
        "",
        exp.get("description", "").strip(),
        "",
        f"*Scale `{scale}`; {len(runs)}/{collected.jobs_total} jobs finished ({_fmt_status(statuses)}); "
        f"compute {wall / 60:.1f} min (sum over jobs); device {', '.join(sorted(set(map(str, runs.get('device', [])))))}; "
        f"git {', '.join(s[:12] for s in shas) or '-'}; written {dt.date.today().isoformat()} by `{command}`.*",
        "",
        "## Verdicts",
        "",
        verdict_table(verdicts) if len(verdicts) else "(no claims evaluated)",
        "",
        *_censoring_notes(runs),
        "Rule (CLAIMS.md): *reproduced* when the 95% bootstrap interval over seeds lies wholly on the claimed "
        "side, *not reproduced* when it lies wholly outside the claim, *inconclusive* otherwise.",
        "",
        "## Setup",
        "",
        "Grid: " + "; ".join(f"`{k}` in {{{', '.join(v)}}}" for k, v in grid.items()),
        "",
        "Fixed: " + ", ".join(f"`{k}={_fmt(v)}`" for k, v in setup.items()),
        "",
    ]
    notes = exp.get("notes")
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    lines += ["## Figures", ""]
    for name, caption in figures:
        lines += [f"![{name}](figures/{name}.png)", "", f"*{caption}*", ""]
    lines += ["## Files", "", "`summary.csv` (one row per run), `metrics.csv.gz` (every logged row), "
              "`verdicts.csv`; `notebooks/explore_results.ipynb` reads them.", ""]
    path = out_dir / "REPORT.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _censoring_notes(runs: pd.DataFrame) -> list[str]:
    """Say which step counts are lower bounds: runs that never reached a steps_to threshold."""
    notes = []
    for col in runs.columns:
        if col.endswith("_reached"):
            missed = int((~runs[col].astype(bool)).sum())
            if missed:
                notes.append(f"`{col[:-len('_reached')]}`: {missed} of {len(runs)} runs never reached the "
                             "threshold; their value is the step budget, a lower bound.")
    return [*notes, ""] if notes else []


def _fmt_status(statuses: dict) -> str:
    return ", ".join(f"{n} {s}" for s, n in statuses.items()) or "none"


README_START, README_END = "<!-- verdicts:start -->", "<!-- verdicts:end -->"


def write_index(results_root: Path) -> Path:
    """``results/README.md``: every experiment's verdicts in one table; the repository README's verdict
    block (between its marker comments) gets the per-experiment summary, so its numbers match the files."""
    rows, summary = [], []
    for verdict_file in sorted(results_root.glob("*/verdicts.csv")):
        exp_id = verdict_file.parent.name
        v = pd.read_csv(verdict_file)
        if v.empty:
            rows.append(f"| [`{exp_id}`]({exp_id}/REPORT.md) | - | (no claims: a supporting sweep) | - |")
        for r in v.itertuples():
            rows.append(f"| [`{exp_id}`]({exp_id}/REPORT.md) | {r.id} | {_cell(r.text)} | **{r.verdict}** |")
        counts = v["verdict"].value_counts()
        tally = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("reproduced", "not reproduced", "inconclusive")
                          if counts.get(k, 0))
        summary.append(f"| [`{exp_id}`](results/{exp_id}/REPORT.md) | {len(v)} | {tally or 'no claims (supporting sweep)'} |")
    lines = ["# Results", "", "Produced by `make reproduce-<id>` (never edited by hand); each REPORT.md says "
             "the scale, the git SHA and the compute it took.", "",
             "| experiment | claim | statement | verdict |", "|---|---|---|---|", *rows, ""]
    path = results_root / "README.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    readme = results_root.resolve().parent / "README.md"
    if results_root.resolve().name == "results" and readme.exists():
        _update_readme(readme, ["| experiment | claims | verdicts |", "|---|---|---|", *summary])
    return path


def _update_readme(readme: Path, table: list[str]) -> None:
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return
    block = "\n".join([README_START, *table, README_END])
    readme.write_text(text[:start] + block + text[end + len(README_END):], encoding="utf-8")

"""REPORT.md of one experiment and the results index (``results/README.md``).

The analysis writes REPORT.md and, at cpu scale, the index; it never touches the repository's README.md
(``analysis/readme.py`` renders the README's verdict block, on request, from the same verdicts)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pandas as pd

from normrepro.analysis.claims import OUTCOMES

SETUP_KEYS = ("data.name", "data.train_limit", "data.order", "data.augment", "model.arch", "model.widths",
              "model.stages", "model.width_mult", "model.depth", "model.activation", "model.placement",
              "model.init", "model.init_std", "norm.kind", "optim.name", "optim.lr", "optim.momentum",
              "optim.schedule.kind", "optim.grad_clip", "train.steps", "train.batch_size", "train.eval_every",
              "model.cell", "model.hidden", "model.pixels_per_step", "model.permute", "model.h0_noise",
              "model.gamma_init", "model.recurrent_init", "data.seq_len", "train.precision", "train.channels_last")
# architecture-specific keys, shown only for their architectures
_RNN = ("rnn", "char_rnn")
ARCH_KEYS = {"model.widths": ("mlp",), "model.stages": ("vgg",), "model.width_mult": ("vgg",),
             "model.depth": ("resnet",), "model.cell": _RNN, "model.hidden": _RNN, "model.h0_noise": _RNN,
             "model.gamma_init": _RNN, "model.recurrent_init": _RNN, "model.pixels_per_step": ("rnn",),
             "model.permute": ("rnn",), "data.seq_len": ("char_rnn",), "model.activation": ("mlp", "vgg", "resnet"),
             "model.placement": ("mlp", "vgg", "resnet"), "model.init": ("mlp", "vgg", "resnet"),
             "model.init_std": ("mlp", "vgg", "resnet"), "train.channels_last": ("vgg", "resnet")}


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _cell(text) -> str:
    """Table-safe text: a '|' inside a cell (as in |skew|) would split it."""
    return str(text).replace("|", "\\|")


def _interval(v) -> str:
    return f"{_fmt(v.effect)} [{_fmt(v.lo)}, {_fmt(v.hi)}]"


def verdict_table(verdicts: pd.DataFrame) -> str:
    lines = ["| claim | expected | a | b | effect [95% CI] | interval | ± (MDE) | n (a/b) | paper | verdict | why |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for v in verdicts.itertuples():
        lines.append(f"| **{v.id}**: {_cell(v.text)} (`{v.metric}`) | {_cell(v.expect)} | {_fmt(v.a)} | "
                     f"{_fmt(v.b)} | {_interval(v)} | {v.method} | {_fmt(v.half_width)} | {v.n_a}/{v.n_b} | "
                     f"{_cell(v.paper or '-')} | **{v.verdict}** | {_cell(_text(v.reason) or '-')} |")
    return "\n".join(lines)


def _text(value) -> str:
    """A CSV-read empty string comes back as NaN."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


RULE = ("Rule (docs/verdict-rule.md): the effect is the mean over seeds of a per-seed number (a - b, paired by "
        "seed when the arms share seeds) and its interval a 95% confidence interval for that mean (*interval*: "
        "Student-t on the paired differences, Welch's t for arms on different seeds, one-sample t for a single "
        "arm, BCa bootstrap once every arm has 30 or more seeds); *± (MDE)* is its half-width, the smallest "
        "effect these seeds can tell from zero. *reproduced*: the interval lies wholly on the claimed side of "
        "the margin; *not reproduced*: wholly outside the claim; *inconclusive*: otherwise, and always with "
        "fewer than 5 seeds in an arm; *not testable here*: an arm the claim depends on failed a health check "
        "(it diverged, its training loss did not fall, a declared bound or budget criterion failed), which is "
        "evidence neither way.")


def write_report(out_dir: Path, exp: dict, collected, verdicts: pd.DataFrame, figures: list[tuple[str, str]],
                 scale: str, command: str, rejudged_at: str | None = None) -> Path:
    """``rejudged_at``: the git SHA a ``--from-results`` re-judgement ran at (the runs' SHAs stay in the line)."""
    runs = collected.runs
    shas = sorted(set(runs.get("git_sha", pd.Series(dtype=str)).dropna()))
    wall = runs["wall_time_s"].sum() if "wall_time_s" in runs else float("nan")
    train = runs["train_time_s"].sum() if "train_time_s" in runs else float("nan")
    # the cost of measuring: what is not SGD steps (evaluations, probes, logging, checkpoints)
    share = f", {1 - train / wall:.0%} of it evaluation, probes and logging" if wall > 0 and train == train else ""
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
        f"compute {wall / 60:.1f} min (sum over jobs{share}); device {', '.join(sorted(set(map(str, runs.get('device', [])))))}; "
        f"git {', '.join(s[:12] for s in shas) or '-'}; written {dt.date.today().isoformat()} by `{command}`.*",
        "",
        *([f"*Re-judged at git {rejudged_at} from the committed frames (summary.csv, metrics.csv.gz) of runs "
           f"made at git {', '.join(s[:12] for s in shas) or '-'}; the runs were not repeated.*", ""]
          if rejudged_at else []),
        "## Verdicts",
        "",
        verdict_table(verdicts) if len(verdicts) else "(no claims evaluated)",
        "",
        *_censoring_notes(runs),
        RULE,
        "",
        "## Setup",
        "",
        "Grid: " + "; ".join(f"`{k}` in {{{', '.join(v)}}}" for k, v in grid.items()),
        "",
        "Fixed: " + ", ".join(f"`{k}={_fmt(v)}`" for k, v in setup.items()),
        "",
    ]
    lines += deviations_table(exp.get("deviations") or [])
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


def deviations_table(deviations: list[dict]) -> list[str]:
    """The experiment file's ``deviations:`` as a table (or a line saying none is declared)."""
    lines = ["## Deviations from the paper", ""]
    if not deviations:
        return lines + ["None declared in the experiment file beyond its scale (the budget its description states).", ""]
    lines += ["| what | paper | here | effect on the result |", "|---|---|---|---|"]
    lines += [f"| {_cell(d['what'])} | {_cell(d['paper'])} | {_cell(d['here'])} | {_cell(d['effect'])} |"
              for d in deviations]
    return lines + [""]


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


SCALE_SUFFIXES = ("-smoke", "-full")  # results/<id>-<scale>/: never part of the committed index


def _verdict_files(results_root: Path) -> list[Path]:
    """The cpu-scale experiments' verdicts: no other scale's folder, no half-written (hidden) folder."""
    return [f for f in sorted(results_root.glob("*/verdicts.csv"))
            if not f.parent.name.startswith(".") and not f.parent.name.endswith(SCALE_SUFFIXES)]


def outcome_counts(verdicts: pd.DataFrame) -> dict:
    counts = verdicts["verdict"].value_counts() if len(verdicts) else pd.Series(dtype=int)
    return {k: int(counts.get(k, 0)) for k in OUTCOMES}


def summary_rows(results_root: Path, link_prefix: str = "") -> list[str]:
    """One table row per experiment: its number of claims and of each of the four outcomes."""
    rows = ["| experiment | claims | " + " | ".join(OUTCOMES) + " |", "|---|---|" + "---|" * len(OUTCOMES)]
    for verdict_file in _verdict_files(results_root):
        exp_id = verdict_file.parent.name
        v = pd.read_csv(verdict_file)
        link = f"[`{exp_id}`]({link_prefix}{exp_id}/REPORT.md)"
        if v.empty:
            rows.append(f"| {link} | 0 | " + " | ".join("-" for _ in OUTCOMES) + " |")
            continue
        counts = outcome_counts(v)
        rows.append(f"| {link} | {len(v)} | " + " | ".join(str(counts[k]) for k in OUTCOMES) + " |")
    return rows


def write_index(results_root: Path) -> Path:
    """``results/README.md``: the four outcomes counted per experiment, then every claim with its verdict."""
    rows = []
    for verdict_file in _verdict_files(results_root):
        exp_id = verdict_file.parent.name
        v = pd.read_csv(verdict_file)
        if v.empty:
            rows.append(f"| [`{exp_id}`]({exp_id}/REPORT.md) | - | (no claims: a supporting sweep) | - | - |")
        for r in v.itertuples():
            reason = _text(getattr(r, "reason", "")) or "-"
            rows.append(f"| [`{exp_id}`]({exp_id}/REPORT.md) | {r.id} | {_cell(r.text)} | **{r.verdict}** | "
                        f"{_cell(reason)} |")
    lines = ["# Results", "", "Produced by `make reproduce-<id>` (never edited by hand); each REPORT.md says "
             "the scale, the git SHA and the compute it took, and docs/verdict-rule.md the rule.", "",
             *summary_rows(results_root), "",
             "| experiment | claim | statement | verdict | why |", "|---|---|---|---|---|", *rows, ""]
    path = results_root / "README.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path

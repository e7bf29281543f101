"""Figures from an experiment's ``plots:`` block: pure functions ``(frame, spec) -> Figure`` (seaborn).

A spec names its ``source`` frame (``metrics``: one row per measurement; ``runs``: one row per run), a
``where`` filter, ``x``/``y`` and optional ``hue`` (a column, or a list of columns shown
combined)/``style``/``col``/``row``, and ``kind``: ``line``
(relplot; the band is the min-max spread over seeds, the line their mean) or ``point`` / ``bar`` / ``box``
(catplot over runs), or ``heatmap`` (``y`` by ``x`` of the mean ``value``, e.g. unit by step). Every hue
label carries its number of seeds, ``n=``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from normrepro.analysis.frames import select  # noqa: E402
from normrepro.analysis.spec_check import PLOT_KINDS as KINDS  # noqa: E402  (one vocabulary)

STYLE = {"style": "whitegrid", "context": "paper", "font_scale": 1.1}


def _combine_hue(frame: pd.DataFrame, hue):
    """A list of hue columns becomes one column "a / b" (e.g. norm kind and placement)."""
    if not isinstance(hue, list):
        return frame, hue
    name = " / ".join(hue)
    frame = frame.copy()
    frame[name] = frame[hue].astype(str).agg(" / ".join, axis=1)
    return frame, name


def _label_with_n(frame: pd.DataFrame, hue: str | None) -> pd.DataFrame:
    if not hue or "seed" not in frame.columns:
        return frame
    frame = frame.copy()
    counts = frame.groupby(hue)["seed"].nunique()
    frame[hue] = frame[hue].map(lambda v: f"{v} (n={counts[v]})")
    return frame


def make_figure(frame: pd.DataFrame, spec: dict):
    """Draw one figure; raises ValueError naming the problem if the spec selects nothing."""
    kind = spec.get("kind", "line")
    if kind not in KINDS:
        raise ValueError(f"plot {spec.get('name')}: unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    data = select(frame, spec.get("where"))
    if data.empty:
        raise ValueError(f"plot {spec.get('name')}: no rows match {spec.get('where')}")
    data, hue = _combine_hue(data.dropna(subset=[spec["y"]]), spec.get("hue"))
    data = _label_with_n(data, hue)
    if hue:
        data = data.sort_values(hue, kind="stable")
    sns.set_theme(**STYLE)
    if kind == "heatmap":
        return _heatmap(data, spec)
    common = dict(data=data, x=spec["x"], y=spec["y"], hue=hue, col=spec.get("col"), row=spec.get("row"),
                  height=spec.get("height", 3.2), aspect=spec.get("aspect", 1.3),
                  facet_kws={"sharey": spec.get("sharey", True), "sharex": spec.get("sharex", True)}
                  if kind == "line" else None)
    if kind == "line":
        grid = sns.relplot(kind="line", style=spec.get("style"), estimator="mean", errorbar=("pi", 100),
                           **common)
    else:
        common.pop("facet_kws")
        extra = {} if kind == "box" else {"errorbar": ("pi", 100)}
        if kind == "point":  # categories on x: no connecting lines; arms side by side
            extra.update(linestyle="none", dodge=0.4 if hue and data[hue].nunique() > 1 else False)
        grid = sns.catplot(kind=kind, sharey=spec.get("sharey", True), **extra, **common)
    if spec.get("logx"):
        grid.set(xscale="log")
    if spec.get("logy"):
        grid.set(yscale="log")
    if spec.get("ylim"):
        grid.set(ylim=tuple(spec["ylim"]))
    grid.set_axis_labels(spec.get("xlabel", spec["x"]), spec.get("ylabel", spec["y"]))
    if spec.get("title"):
        grid.figure.suptitle(spec["title"], y=1.03)
    return grid.figure


def _heatmap(data: pd.DataFrame, spec: dict):
    """``value`` averaged over seeds, ``y`` (e.g. unit) down, ``x`` (e.g. step) across; one panel per ``col``."""
    col = spec.get("col")
    panels = sorted(data[col].unique(), key=str) if col else [None]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        part = data if panel is None else data[data[col] == panel]
        table = part.pivot_table(index=spec["y"], columns=spec["x"], values=spec.get("value", "value"),
                                 aggfunc="mean")
        table.index = [int(i) if float(i).is_integer() else i for i in table.index]  # units read back as floats
        sns.heatmap(table, ax=ax, vmin=spec.get("vmin"), vmax=spec.get("vmax"), cmap=spec.get("cmap", "viridis"),
                    cbar_kws={"label": spec.get("ylabel", "value")})
        ax.set_title(f"{col} = {panel}" if panel is not None else "")
        ax.set_xlabel(spec.get("xlabel", spec["x"]))
        ax.set_ylabel(spec["y"])
    if spec.get("title"):
        fig.suptitle(spec["title"])
    fig.tight_layout()
    return fig


def save_figure(fig, out_dir, name: str) -> list:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=120, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None})
    plt.close(fig)
    return paths

"""The per-block rules of the experiment-file checker (``spec_check``): the fields, vocabularies and column
names of ``derived:``, ``claims:`` and ``plots:`` entries. ``BlockChecks`` is mixed into the checker, which
supplies the grid, the columns and the error list."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from normrepro.analysis.claims import EXPECTS, REDUCERS
from normrepro.analysis.derive import KINDS as DERIVED_KINDS
from normrepro.analysis.safe_expr import Expression, UnsafeExpression
from normrepro.store import METRICS, SPLITS, _valid_bn_mode

PLOT_KINDS = ("line", "point", "bar", "box", "heatmap")
PLOT_SOURCES = ("metrics", "runs")
FILTERS = ("where", "a", "b", "a_minus", "b_minus")

CLAIM_KEYS = {"id", "text", "paper", "expect", "metric", "metric_a", "metric_b", "margin", "range", "reduce",
              "fill_na", "exclude_diverged", "about_divergence", "failure_is_outcome", "trains", "requires_reached", *FILTERS}
_ROW_KEYS = {"name", "kind", "split", "metric", "layer", "unit", "bn_mode", "from_step"}
DERIVED_KEYS = {"expr": {"name", "kind", "expr"}, "at_step": _ROW_KEYS | {"step"},
                "steps_to": _ROW_KEYS | {"threshold", "below"}}
PLOT_KEYS = {"name", "kind", "source", "where", "x", "y", "hue", "style", "col", "row", "value", "height",
             "aspect", "sharex", "sharey", "logx", "logy", "ylim", "xlabel", "ylabel", "title", "caption",
             "vmin", "vmax", "cmap"}
# where a setup departs from the paper's: what, the paper's choice, ours, and what it does to the result
DEVIATION_KEYS = {"what", "paper", "here", "effect"}
PLOT_COLUMN_KEYS = ("x", "y", "hue", "style", "col", "row", "value")
VOCABULARY = {"split": SPLITS, "metric": tuple(METRICS)}  # metrics-frame columns with closed vocabularies




def _valid_bn_mode_filter(mode) -> bool:
    """A store bn_mode, or NaN / None: the rows of a model without BN, which carry none."""
    return mode is None or str(mode) == "nan" or _valid_bn_mode(mode)


def _suggest(name, valid: Iterable[str], limit: int = 40, close_from: Iterable[str] | None = None) -> str:
    """``did you mean X? valid: a, b, ...``: close matches (among ``close_from``, default ``valid``)."""
    valid = sorted(set(map(str, valid)))
    close = difflib.get_close_matches(str(name), sorted(set(map(str, close_from or valid))), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    shown = ", ".join(valid[:limit]) + (f", ... ({len(valid)} in all)" if len(valid) > limit else "")
    return f"{hint}valid: {shown}"


class BlockChecks:
    def deviations(self) -> None:
        """Each entry names what differs, the paper's choice, ours and its effect (all four, as text)."""
        for where, d in self._entries("deviations", "what"):
            missing = sorted(DEVIATION_KEYS - set(d))
            unknown = sorted(set(d) - DEVIATION_KEYS)
            if missing or unknown:
                self.error(where, f"a deviation has exactly the keys {', '.join(sorted(DEVIATION_KEYS))}"
                                  f"{'; missing ' + ', '.join(missing) if missing else ''}"
                                  f"{'; unknown ' + ', '.join(unknown) if unknown else ''}")

    def derived(self) -> set[str]:
        """Check the derived block; returns the runs-table columns it adds."""
        base = self.all_leaves | self.results
        added: set[str] = set()
        entries = list(self._entries("derived", "name"))
        for where, d in entries:  # the per-run kinds first: expressions may name any of them
            kind = d.get("kind")
            if kind not in DERIVED_KINDS:
                self.error(where, f"unknown kind {kind!r}; {_suggest(kind, DERIVED_KINDS)}")
                continue
            if kind == "expr":
                continue
            added.add(d["name"])
            if kind == "steps_to":
                added.add(d["name"] + "_reached")
            self._unknown_keys(where, d, DERIVED_KEYS.get(kind, _ROW_KEYS))
            for field in ("split", "metric"):
                if field not in d:
                    self.error(where, f"kind {kind} needs {field!r}")
            if "split" in d and d["split"] not in SPLITS:
                self.error(where, f"unknown split {d['split']!r}; {_suggest(d['split'], SPLITS)}")
            for m in d.get("metric") if isinstance(d.get("metric"), list) else [d.get("metric")]:
                if m is not None and m not in METRICS:
                    self.error(where, f"unknown metric {m!r}; {_suggest(m, METRICS)}")
            for mode in d["bn_mode"] if isinstance(d.get("bn_mode"), list) else [d.get("bn_mode", "nan")]:
                if not _valid_bn_mode_filter(mode):
                    self.error(where, f"unknown bn_mode {mode!r} (population, batch, ema_slow, shared, precise@N, "
                                      "batch@n, or nan: rows of models without BN)")
            if kind == "steps_to" and not isinstance(d.get("threshold"), (int, float)):
                self.error(where, "kind steps_to needs a numeric 'threshold'")
        for where, d in entries:
            if d.get("kind") != "expr":
                continue
            self._unknown_keys(where, d, DERIVED_KEYS["expr"])
            if not isinstance(d.get("expr"), str):
                self.error(where, "kind expr needs an 'expr' string")
                continue
            try:
                expression = Expression(d["expr"], where)
            except UnsafeExpression as err:
                self.errors.append(str(err))
                continue
            for name in expression.columns:
                if not self._is_column(name, base | added):
                    self.error(where, f"expr names {name!r}, not a column of the runs table; "
                                      f"{self._hint(name, base | added)}")
            added.add(d["name"])
        return added

    def claims(self, runs_columns: set[str], metric_columns: set[str]) -> None:
        for where, c in self._entries("claims", "id"):
            self._unknown_keys(where, c, CLAIM_KEYS)
            expect = c.get("expect")
            if expect not in EXPECTS:
                self.error(where, f"unknown expect {expect!r}; {_suggest(expect, EXPECTS)}")
            if c.get("reduce", "mean") not in REDUCERS:
                self.error(where, f"unknown reduce {c['reduce']!r}; {_suggest(c['reduce'], REDUCERS)}")
            sides = ["metric_a"] if expect == "between" else ["metric_a", "metric_b"]
            checked = set()
            for side in sides:
                metric = c.get(side, c.get("metric"))
                if metric is not None and metric in checked:
                    continue
                checked.add(metric)
                if metric is None:
                    self.error(where, f"needs 'metric' (or {side!r})")
                elif not self._is_column(metric, metric_columns):
                    self.error(where, f"{side if side in c else 'metric'} {metric!r} is not a derived name or a "
                                      f"result column; {self._hint(metric, metric_columns)}")
            if expect == "between":
                rng = c.get("range")
                if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, (int, float)) for v in rng)
                        and rng[0] <= rng[1]):
                    self.error(where, f"expect between needs range: [low, high] (numbers, low <= high), got {rng!r}")
                for field in ("b", "b_minus", "metric_b"):
                    if field in c:
                        self.error(where, f"expect between judges arm a alone: {field!r} would be ignored")
            elif c.get("a") == c.get("b") and c.get("a_minus") == c.get("b_minus") \
                    and c.get("metric_a", c.get("metric")) == c.get("metric_b", c.get("metric")):
                self.error(where, "arms a and b select the same runs and metric: the effect is 0 by construction")
            for field in ("margin", "fill_na"):
                if field in c and not isinstance(c[field], (int, float)):
                    self.error(where, f"{field} must be a number, got {c[field]!r}")
            for field in FILTERS:
                self._check_filter(where, field, c.get(field), runs_columns, "runs")

    def plots(self, runs_columns: set[str], metrics_columns: set[str]) -> None:
        for where, p in self._entries("plots", "name"):
            self._unknown_keys(where, p, PLOT_KEYS)
            kind, source = p.get("kind", "line"), p.get("source", "metrics")
            if kind not in PLOT_KINDS:
                self.error(where, f"unknown kind {kind!r}; {_suggest(kind, PLOT_KINDS)}")
            if source not in PLOT_SOURCES:
                self.error(where, f"unknown source {source!r}; {_suggest(source, PLOT_SOURCES)}")
                continue
            columns = runs_columns if source == "runs" else metrics_columns
            for field in ("x", "y"):
                if field not in p:
                    self.error(where, f"needs {field!r} (a column of the {source} table)")
            for field in PLOT_COLUMN_KEYS:
                for name in p.get(field) if isinstance(p.get(field), list) else [p.get(field)]:
                    if name is not None and not self._is_column(name, columns if source == "runs" else None,
                                                                 columns if source == "metrics" else None):
                        self.error(where, f"{field} {name!r} is not a column of the {source} table; "
                                          f"{self._hint(name, columns)}")
            self._check_filter(where, "where", p.get("where"), columns, source)


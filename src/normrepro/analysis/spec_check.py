"""Check an experiment's ``derived:``, ``claims:`` and ``plots:`` blocks before any job trains.

A typo in these blocks used to surface only in ``make report-<id>``, after hours of training (or never: a
filter value that matches no run makes an inconclusive claim). Run by ``plan_jobs`` (so ``make plan-<id>``,
``make reproduce-<id>`` and the analysis) over every planned job, and by each training job on its own
config. It checks:

- required fields and known keys of each entry, per kind; the vocabularies (claim ``expect`` / ``reduce``,
  derived ``kind``, plot ``kind`` / ``source``, the store's split, metric and bn_mode names);
- metric names: a claim's metric is a derived name, a result column the config produces
  (``columns.result_columns``) or a config column; a derived ``expr`` parses under ``safe_expr`` and names
  such columns; a plot's x / y / hue / ... are columns of its source frame;
- ``a`` / ``b`` / ``where`` / ``a_minus`` / ``b_minus`` filters: keys are columns of the frame they filter
  (config keys included: collect adds the ones the blocks name, ``referenced_columns``); with the whole
  grid known, each value of a config key must be one some job takes.

Values a command-line override restricts are not held against the grid (a smoke run of one seed is fine);
a group override (``norm=bn``, ``setting=...``) disables the value checks, as it changes keys by the dozen,
and so does the smoke scale, whose capped budgets and data sizes change values derived from them.
Every problem is reported at once, in one ``SpecError`` line naming block, entry and the valid choices.
No torch, no models: this runs in ``make plan`` and before a job loads its data.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from omegaconf import DictConfig, OmegaConf

from normrepro.analysis.claims import EXPECTS, REDUCERS
from normrepro.analysis.columns import (
    METRICS_COLUMNS,
    canonical,
    config_leaves,
    could_be_result_column,
    result_columns,
)
from normrepro.analysis.derive import KINDS as DERIVED_KINDS
from normrepro.analysis.safe_expr import Expression, UnsafeExpression
from normrepro.errors import ConfigError
from normrepro.store import METRICS, SPLITS, _valid_bn_mode

PLOT_KINDS = ("line", "point", "bar", "box", "heatmap")
PLOT_SOURCES = ("metrics", "runs")
FILTERS = ("where", "a", "b", "a_minus", "b_minus")

CLAIM_KEYS = {"id", "text", "paper", "expect", "metric", "metric_a", "metric_b", "margin", "range", "reduce",
              "fill_na", "exclude_diverged", *FILTERS}
_ROW_KEYS = {"name", "kind", "split", "metric", "layer", "unit", "bn_mode", "from_step"}
DERIVED_KEYS = {"expr": {"name", "kind", "expr"}, "at_step": _ROW_KEYS | {"step"},
                "steps_to": _ROW_KEYS | {"threshold", "below"}}
PLOT_KEYS = {"name", "kind", "source", "where", "x", "y", "hue", "style", "col", "row", "value", "height",
             "aspect", "sharex", "sharey", "logx", "logy", "ylim", "xlabel", "ylabel", "title", "caption",
             "vmin", "vmax", "cmap"}
PLOT_COLUMN_KEYS = ("x", "y", "hue", "style", "col", "row", "value")
VOCABULARY = {"split": SPLITS, "metric": tuple(METRICS)}  # metrics-frame columns with closed vocabularies


def _valid_bn_mode_filter(mode) -> bool:
    """A store bn_mode, or NaN / None: the rows of a model without BN, which carry none."""
    return mode is None or str(mode) == "nan" or _valid_bn_mode(mode)


class SpecError(ConfigError):
    """An experiment's derived / claims / plots block that cannot be evaluated as written."""


def _suggest(name, valid: Iterable[str], limit: int = 40, close_from: Iterable[str] | None = None) -> str:
    """``did you mean X? valid: a, b, ...``: close matches (among ``close_from``, default ``valid``)."""
    valid = sorted(set(map(str, valid)))
    close = difflib.get_close_matches(str(name), sorted(set(map(str, close_from or valid))), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    shown = ", ".join(valid[:limit]) + (f", ... ({len(valid)} in all)" if len(valid) > limit else "")
    return f"{hint}valid: {shown}"


class _Checker:
    def __init__(self, configs: list[dict], cli: list[str], grid_known: bool):
        self.spec = configs[0]
        leaves = [config_leaves(c) for c in configs]
        self.all_leaves = set().union(*leaves)
        self.grid_known = grid_known
        if grid_known:
            varying = {k for k in self.all_leaves if len({str(x.get(k)) for x in leaves}) > 1} | {"seed"}
        else:
            varying = set(self.all_leaves)  # one job alone cannot tell which keys the grid varies
        self.grid = varying
        self.values = {k: {canonical(x.get(k)) for x in leaves} for k in self.all_leaves}
        self.fixed = {k: leaves[0].get(k) for k in self.all_leaves - varying}
        keys = [o.lstrip("+~").split("=", 1)[0] for o in cli if "=" in o]
        self.cli_keys = [k for k in keys if not k.startswith("hydra")]
        # smoke caps budgets and data sizes, and values derived from them (a batch of the whole subset) with
        # them: the grid values are checked at the scales experiment files are written for
        self.grid_checks = grid_known and all("." in k or k in self.all_leaves for k in self.cli_keys) \
            and self.spec.get("scale", {}).get("name") != "smoke"
        self.results = set().union(*(result_columns(c) for c in configs))
        self.errors: list[str] = []

    # ------------------------------------------------------------------------------------------- helpers
    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def _cli_touches(self, key: str) -> bool:
        return any(key == k or key.startswith(k + ".") for k in self.cli_keys)

    def _entries(self, block: str, id_key: str):
        entries = self.spec.get(block) or []
        if not isinstance(entries, list):
            self.error(block, f"must be a list of entries, got {type(entries).__name__}")
            return
        seen = set()
        for i, entry in enumerate(entries):
            label = f"{block}[{i}]"
            if not isinstance(entry, dict):
                self.error(label, f"must be a mapping, got {entry!r}")
                continue
            ident = entry.get(id_key)
            if not isinstance(ident, str) or not ident:
                self.error(label, f"needs a {id_key!r} (a non-empty string)")
                continue
            if ident in seen:
                self.error(f"{block} {ident!r}", f"the {id_key} is used twice in the block")
            seen.add(ident)
            yield f"{block} {ident!r}", entry

    def _is_column(self, name, runs_columns: set | None, other: set | None = None) -> bool:
        """In the runs table (``runs_columns``) or another frame's columns (``other``). One job alone cannot
        see which results its grid's other jobs produce: then any result column a config could make counts."""
        if runs_columns is not None and (name in runs_columns or
                                         (not self.grid_known and could_be_result_column(str(name)))):
            return True
        return other is not None and name in other

    def _hint(self, name, columns: set) -> str:
        """Close matches among ``columns``; the listing leaves out config keys the runs table lacks."""
        listed = {c for c in columns if c not in self.all_leaves or (self.grid_known and c in self.grid)}
        # (config keys the grid does not vary are valid but left out of the listing: there are a hundred)
        return _suggest(name, listed, close_from=columns) + ("" if self.grid_known else " (or a config key)")

    def _unknown_keys(self, where: str, entry: dict, allowed: set) -> None:
        for key in sorted(set(entry) - allowed):
            self.error(where, f"unknown field {key!r}; {_suggest(key, allowed)}")

    def _check_filter(self, where: str, field: str, flt, columns: set, frame: str) -> None:
        if flt is None:
            return
        if not isinstance(flt, dict):
            self.error(where, f"{field} must be a mapping column: value, got {flt!r}")
            return
        for key, value in flt.items():
            values = value if isinstance(value, list) else [value]
            label = f"{field} filter on {key!r}"
            if key in VOCABULARY and frame == "metrics":
                for v in values:
                    if v not in VOCABULARY[key]:
                        self.error(where, f"{label}: unknown {key} {v!r}; {_suggest(v, VOCABULARY[key])}")
                continue
            if key == "bn_mode" and frame == "metrics":
                for v in values:
                    if not _valid_bn_mode_filter(v):
                        self.error(where, f"{label}: unknown bn_mode {v!r} (population, batch, ema_slow, "
                                          "shared, precise@N, batch@n, or nan: rows of models without BN)")
                continue
            if not self._is_column(key, columns if frame == "runs" else None, columns):
                self.error(where, f"{label}: not a column of the {frame} table; {self._hint(key, columns)}")
                continue
            if self.grid_checks and key in self.values and not self._cli_touches(key):
                grid_values = self.values[key]
                for v in values:
                    if canonical(v) not in grid_values:
                        self.error(where, f"{label}: {v!r} is not a value of the grid; valid: "
                                          f"{', '.join(sorted(grid_values))}")

    # -------------------------------------------------------------------------------------------- blocks
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

    def run(self) -> list[str]:
        added = self.derived()
        # config leaves the grid does not vary are columns too: collect adds those the blocks name
        runs_columns = self.all_leaves | self.results | added
        metric_columns = runs_columns
        metrics_columns = self.all_leaves | set(METRICS_COLUMNS)
        self.claims(runs_columns, metric_columns)
        self.plots(runs_columns, metrics_columns)
        return self.errors


def referenced_columns(spec: dict) -> set[str]:
    """The columns an experiment's claims and plots name (filter keys, plot axes): collect keeps these in
    its frames even where every job has the same value, so a narrowed sweep (``norm=gn``) stays analysable."""
    names: set[str] = set()
    for claim in spec.get("claims") or []:
        for field in FILTERS:
            names.update((claim.get(field) or {}).keys())
    for plot in spec.get("plots") or []:
        names.update((plot.get("where") or {}).keys())
        for field in PLOT_COLUMN_KEYS:
            value = plot.get(field)
            names.update(value if isinstance(value, list) else [value] if value else [])
    return {str(n) for n in names}


def _containers(configs) -> list[dict]:
    return [OmegaConf.to_container(c, resolve=True) if isinstance(c, DictConfig) else c for c in configs]


def check_experiment(configs, cli: Iterable[str] = (), grid_known: bool = True) -> None:
    """Check the analysis blocks against every planned job's config (DictConfigs or resolved dicts)."""
    configs = _containers(configs)
    if not configs:
        return
    errors = _Checker(configs, list(cli), grid_known).run()
    if errors:
        exp = configs[0].get("experiment_id", "?")
        raise SpecError(f"configs/experiment/{exp}.yaml: " + "; ".join(errors))


def check_job_config(cfg) -> None:
    """One training job's check (its grid unknown): vocabularies, fields, metric and column names."""
    check_experiment([cfg], grid_known=False)


def check_overrides(configs, cli: Iterable[str]) -> None:
    """Refuse a command-line override that Hydra accepts but no job uses: an architecture's own setting
    (``model.depth`` for ResNets) when no job builds that architecture leaves every result unchanged."""
    from normrepro.analysis.report import ARCH_KEYS  # which keys belong to which model.arch

    configs = _containers(configs)
    archs = {c["model"]["arch"] for c in configs}
    for override in cli:
        key = override.lstrip("+~").split("=", 1)[0]
        if key in ARCH_KEYS and not archs & set(ARCH_KEYS[key]):
            exp = configs[0].get("experiment_id", "?")
            raise SpecError(f"override {override!r} has no effect on {exp}: {key} applies to model.arch "
                            f"{' / '.join(ARCH_KEYS[key])}, and its jobs use {', '.join(sorted(archs))}; drop it")

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

from collections.abc import Iterable

from omegaconf import DictConfig, OmegaConf

from normrepro.analysis.columns import (
    METRICS_COLUMNS,
    canonical,
    config_leaves,
    could_be_result_column,
    result_columns,
)
from normrepro.analysis.results import name_result_columns
from normrepro.analysis.spec_blocks import (  # noqa: F401  (re-exported: plots reads PLOT_KINDS here)
    CLAIM_KEYS,
    DERIVED_KEYS,
    FILTERS,
    PLOT_COLUMN_KEYS,
    PLOT_KEYS,
    PLOT_KINDS,
    PLOT_SOURCES,
    VOCABULARY,
    BlockChecks,
    _suggest,
    _valid_bn_mode_filter,
)
from normrepro.errors import ConfigError


class SpecError(ConfigError):
    """An experiment's derived / claims / plots block that cannot be evaluated as written."""


class _Checker(BlockChecks):
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
    def run(self) -> list[str]:
        added = self.derived()
        # config leaves the grid does not vary are columns too: collect adds those the blocks name
        runs_columns = self.all_leaves | self.results | added
        metric_columns = runs_columns
        metrics_columns = self.all_leaves | set(METRICS_COLUMNS)
        self.claims(runs_columns, metric_columns)
        self.plots(runs_columns, metrics_columns)
        self.deviations()
        return self.errors


def referenced_columns(spec: dict) -> set[str]:
    """The columns an experiment's claims and plots name (filter keys, plot axes): collect keeps these in
    its frames even where every job has the same value, so a narrowed sweep (``norm=gn``) stays analysable."""
    names: set[str] = set()
    spec = name_result_columns(spec)
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
    """Resolved dicts, with structured result names (``{split, metric, bn_mode}``) turned into columns."""
    return [name_result_columns(OmegaConf.to_container(c, resolve=True) if isinstance(c, DictConfig) else c)
            for c in configs]


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

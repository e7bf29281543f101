"""The columns of the two analysis frames, in one place: what collect builds and what spec_check accepts.

``runs`` (one row per run): the grid's config leaves, ``run``, ``diverged``, the summary keys
(``SUMMARY_KEYS``) and one column per evaluated quantity, ``<final|best>_<split>_<metric><suffix>``
(``summary_column``), plus the derived metrics. ``result_columns(cfg)`` says which of the evaluated ones a
config produces: it mirrors the keys the trainer's evaluation writes (``Trainer._evaluate_splits``:
``<split>/<metric><suffix>``), and a test trains a smoke run to hold the two together.

``metrics`` (one row per measurement): the store's fields, ``run`` and the grid's config leaves.

Light on purpose (no torch, no pandas): the checks that use it run before any training.
"""

from __future__ import annotations

import re

from normrepro.store import evaluation_key

SUMMARY_KEYS = ("status", "steps_done", "diverged_at", "wall_time_s", "train_time_s", "samples_per_s",
                "params", "git_sha", "device", "threads")
RUN_COLUMNS = ("run", "diverged", *SUMMARY_KEYS)  # every runs row has these besides the grid and results
METRIC_FIELDS = ("step", "epoch", "split", "metric", "value", "layer", "unit", "bn_mode")  # store's schema
METRICS_COLUMNS = (*METRIC_FIELDS, "run")
SUMMARY_KINDS = ("final", "best")  # the last evaluation and the best over them (results.py, from the rows)
EVALUATED_SPLITS = ("val", "test", "train_eval")  # the evaluator's splits
EVALUATED_METRICS = ("loss", "acc", "bpc")
ANALYSIS_BLOCKS = ("derived", "claims", "plots", "paper", "description")  # config keys that are not settings


def flatten(tree: dict, prefix: str = "") -> dict:
    """Nested config -> ``{"norm.kind": "bn", ...}``; lists become their string (one frame cell)."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value if not isinstance(value, list) else str(value)
    return out


def summary_column(kind: str, key: str) -> str:
    """A ``final``/``best`` value of key ``test/acc_precise1000`` -> column ``final_test_acc_precise1000``."""
    return f"{kind}_{key.replace('/', '_')}"


def evaluation_keys(cfg: dict) -> list[str]:
    """The ``<split>/<metric><suffix>`` keys a run of ``cfg`` (a resolved config as nested dicts) evaluates.

    Suffixes that need BN layers (``_batchstats``, ``_emaslow``, ``_precise<N>``, ``_batch<n>``,
    ``_sharedstats``) are listed whenever the config asks for them: whether the model has BN is the models'
    business, so a run without BN may lack them (its cells are then empty).
    """
    train, norm = cfg.get("train", {}), cfg.get("norm", {})
    splits = ["val", "test"] + (["train_eval"] if train.get("eval_train_examples") else [])
    metrics = ["loss", "acc"] + (["bpc"] if cfg.get("data", {}).get("name") == "ptb_char" else [])
    every = [None]  # the population statistics (or no BN): no suffix
    if train.get("eval_shared_stats"):
        every.append("shared")
    if train.get("eval_batch_stats"):
        every.append("batch")
    test_only = [f"precise@{n}" for n in train.get("bn_eval_precise") or []]
    test_only += [f"batch@{n}" for n in train.get("bn_eval_test_batches") or []]
    if norm.get("momentum_slow") is not None:
        test_only.append("ema_slow")
    # the suffixes are store.evaluation_key's: one mapping from a BN mode to a column name
    keys = [evaluation_key(s, m, mode) for mode in every for s in splits for m in metrics]
    return keys + [evaluation_key("test", m, mode) for mode in test_only for m in metrics]


def result_columns(cfg: dict) -> list[str]:
    """Every runs-frame column a run of ``cfg`` fills besides its config leaves and the derived metrics."""
    keys = evaluation_keys(cfg)
    return [*RUN_COLUMNS, *(summary_column(kind, key) for kind in SUMMARY_KINDS for key in keys)]


_SUFFIX = r"(_sharedstats|_batchstats|_emaslow|_precise[0-9]+|_batch[0-9]+)?"
RESULT_PATTERN = re.compile(rf"({'|'.join(SUMMARY_KINDS)})_(val|test|train_eval)_(loss|acc|bpc){_SUFFIX}")


def could_be_result_column(name: str) -> bool:
    """Whether some config could produce ``name`` (the check of one job, which cannot see its grid)."""
    return name in RUN_COLUMNS or RESULT_PATTERN.fullmatch(name) is not None


def config_leaves(cfg: dict) -> dict:
    """A resolved config's settings as flat ``{key: value}``, without the analysis blocks."""
    return flatten({k: v for k, v in cfg.items() if k not in ANALYSIS_BLOCKS and k != "hydra"})


def canonical(value) -> str:
    """Compare by value, not by dtype: 3, 3.0 and "3" are the same grid value (CSV and NaN-holding columns
    turn integers into floats)."""
    if isinstance(value, bool):
        return str(value)
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(f)) if f.is_integer() else repr(f)

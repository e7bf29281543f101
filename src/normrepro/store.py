"""The metrics schema and its writer/reader: the local store every figure and verdict is computed from.

Each run directory holds ``metrics.jsonl``: one JSON object per measurement,
``{"step", "epoch", "split", "metric", "value"}`` plus the optional ``layer``, ``unit`` and ``bn_mode``.
Rows are flushed as they are written, so a killed run leaves only whole lines behind. Metric and split names
come from closed vocabularies: a typo fails at the writer, not weeks later in a plot.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

SPLITS = ("train", "train_eval", "val", "test", "probe")

# name -> meaning. Percentiles and fractions are over the probe examples (and units, where no unit is named).
METRICS = {
    "loss": "mean cross-entropy (nats)",
    "acc": "classification accuracy (fraction)",
    "bpc": "bits per character: the mean per-character cross-entropy / ln 2 (language modelling)",
    "hidden_grad_norm": "||dL/dh_t|| over a probe batch at step 0 (unit = the time step t; [C] Fig. 1a)",
    "lr": "learning rate at this step",
    "samples_per_s": "training examples per second since the last log row",
    "grad_norm": "L2 norm of a layer's weight gradient (layer names the layer; no layer = all parameters)",
    "preact_p15": "15th percentile of a unit's nonlinearity input ([BN] Fig. 1b,c)",
    "preact_p50": "median of a unit's nonlinearity input",
    "preact_p85": "85th percentile of a unit's nonlinearity input",
    "preact_mean": "mean over units of each unit's mean nonlinearity input",
    "preact_std": "mean over units of each unit's std of its nonlinearity input",
    "preact_skew": "mean over units of |skewness| of the nonlinearity input (0 for a Gaussian)",
    "preact_kurt": "mean over units of |excess kurtosis| of the nonlinearity input (0 for a Gaussian)",
    "postact_skew": "mean over units of |skewness| of the nonlinearity output",
    "postact_kurt": "mean over units of |excess kurtosis| of the nonlinearity output",
    "frac_mid68": "fraction of sigmoid outputs in [0.27, 0.73] (68% for N(0,1) inputs)",
    "frac_mid95": "fraction of sigmoid outputs in [0.12, 0.88] (95% for N(0,1) inputs)",
    "param_norm": "L2 norm of a parameter tensor (layer names it)",
    "grad_rel": "||gradient|| / ||parameter|| of a parameter tensor (layer names it)",
    "update_rel": "||update|| / ||parameter|| of one optimizer step (layer names the tensor)",
    "gamma_cancel": "mean over channels of |sum of per-example dL/dgamma| / sum of |per-example dL/dgamma|",
    "bn_scale_output_diff": "max |BN(aWu) - BN(Wu)| (layer = 'a=<scale>'; [BN] 3.3)",
    "bn_scale_grad_ratio": "a * ||dL/d(aW)|| / ||dL/dW|| (1 when the gradient scales as 1/a)",
    "orth_err": "mean |W W^T / s^2 - I| over a layer's groups of rows (s = OWN's scale, else 1; layer names it)",
    "orth_err_rownorm": "mean |W W^T - I| with W's rows scaled to unit norm: filter redundancy (layer names it)",
    "frac_active": "fraction of nonlinearity outputs that are non-zero (ReLU activity)",
    "frac_stuck_zero": "fraction of (training example, ReLU unit) pairs whose output was 0 every time the "
                       "example was seen in the tracked last epochs ([S0]'s shuffling mechanism)",
    "steps_to_tol": "steps until ||x_t - x*|| <= tol ||x_0 - x*|| on a quadratic (layer = method, unit = its "
                    "condition number kappa; probes.ravine)",
    "ravine_slope": "least-squares slope of log(steps_to_tol) against log(kappa) (1: steps ~ kappa; 1/2: ~ sqrt kappa)",
    "saddle_escape_steps": "steps until a deep linear net's full-batch loss falls to a fraction of its initial "
                           "value from a small init (layer = gd | sgd; probes.saddle)",
    "layer_preact_std": "std over all (example, unit) entries of a hidden layer's nonlinearity input "
                        "(layer = 1.. from the input; He et al. 2015's y_l)",
    "layer_act_std": "std over all (example, unit) entries of a hidden layer's nonlinearity output",
    "layer_grad_std": "std over all entries of dC/d(nonlinearity input), C the summed cross-entropy "
                      "(the back-propagated gradient; Glorot & Bengio 2010 Sec. 4.2)",
    "weight_rank": "numerical rank of a Linear weight (singular values above 1e-4 of the largest; layer names it)",
    "weight_sv_ratio": "sigma_2 / sigma_1 of a Linear weight (0 when rank 1; layer names it)",
    "frac_zero": "fraction of (training example, ReLU unit) outputs that were 0 over the tracked epochs",
    "decor_err": "mean over a layer's feature groups of ||Cov(normalized output) - I||_F (layer names it; "
                 "bn_mode: batch@B = within training-size batches, population = running statistics)",
    "decor_err_layer": "||Cov(normalized output) - I||_F over all units of a layer (layer names it)",
    "snd": "stochastic normalization disturbance: RMS per unit of one example's normalized output's spread "
           "over random batches of n (bn_mode batch@n; [IterNorm] Sec. 4)",
    "norm_step_ms": "milliseconds per forward + backward of one norm layer (layer = g=<features per group>)",
    "frac_dead": "fraction of a layer's units whose nonlinearity input is <= 0 on every probe example "
                 "(a ReLU unit there outputs 0 for every input: dead)",
    "postact_mean": "mean over probe examples and units of a layer's nonlinearity output (0 = zero-centred)",
    "p_dead_init": "fraction of randomly initialized nets that are dead on the probe examples (a hidden layer "
                   "all 0, or a constant output; Lu et al. 2019); unit = the nets' depth (hidden layers), "
                   "layer = their width (units per hidden layer)",
    "p_dead_init_lo": "lower end of the 95% Wilson interval of p_dead_init (over that run's nets)",
    "p_dead_init_hi": "upper end of the 95% Wilson interval of p_dead_init (over that run's nets)",
}

REQUIRED = ("step", "epoch", "split", "metric", "value")
OPTIONAL = ("layer", "unit", "bn_mode")
# What BN normalized with at evaluation: its running averages (population), the slow second average
# (ema_slow), precise population statistics over N training images (precise@N), the test batch's own
# statistics (batch: batches as in training; batch@n: whole test batches of n), or, for recurrent BN,
# statistics pooled over time steps (shared).
BN_MODES = ("batch", "population", "precise", "ema_slow", "shared")
SIZED_BN_MODES = ("precise", "batch")  # may carry "@<examples>"
# an evaluation's key is <split>/<metric><suffix>; the suffix names the BN statistics mode it used
MODE_SUFFIXES = {"population": "", "shared": "_sharedstats", "batch": "_batchstats", "ema_slow": "_emaslow",
                 "precise@": "_precise", "batch@": "_batch"}


def evaluation_key(split: str, metric: str, bn_mode=None) -> str:
    """``("test", "acc", "precise@1000")`` -> ``"test/acc_precise1000"``; no mode (no BN, or NaN in a frame)
    and ``population`` (BN's running averages, as deployed) add no suffix."""
    if bn_mode is None or (isinstance(bn_mode, float) and bn_mode != bn_mode):
        return f"{split}/{metric}"
    base, at, size = str(bn_mode).partition("@")
    suffix = MODE_SUFFIXES.get(base + at)
    if suffix is None or not _valid_bn_mode(bn_mode):
        raise SchemaError(f"unknown bn_mode {bn_mode!r}; valid: {', '.join(BN_MODES)}")
    return f"{split}/{metric}{suffix}{size}"


class SchemaError(ValueError):
    """A metrics row that does not follow the schema."""


def validate_row(row: dict) -> dict:
    missing = [k for k in REQUIRED if k not in row]
    if missing:
        raise SchemaError(f"metrics row lacks {missing}: {row}")
    extra = set(row) - set(REQUIRED) - set(OPTIONAL)
    if extra:
        raise SchemaError(f"metrics row has unknown fields {sorted(extra)}; allowed optional: {OPTIONAL}")
    if row["split"] not in SPLITS:
        raise SchemaError(f"unknown split {row['split']!r}; valid: {', '.join(SPLITS)}")
    if row["metric"] not in METRICS:
        raise SchemaError(f"unknown metric {row['metric']!r}; valid: {', '.join(METRICS)}")
    if "bn_mode" in row and not _valid_bn_mode(row["bn_mode"]):
        raise SchemaError(f"unknown bn_mode {row['bn_mode']!r}; valid: {', '.join(BN_MODES)}")
    return row


def _valid_bn_mode(mode: str) -> bool:
    base, at, size = str(mode).partition("@")
    if not at:
        return base in BN_MODES
    return base in SIZED_BN_MODES and size.isdigit() and int(size) > 0


class MetricsWriter:
    """Appends validated rows to ``metrics.jsonl`` and hands each to optional mirrors (e.g. wandb)."""

    def __init__(self, path: Path, mirrors: Iterable = ()):
        self.path = Path(path)
        self.mirrors = list(mirrors)
        self._fh = self.path.open("a", encoding="utf-8")

    def write(self, step: int, epoch: float, split: str, metric: str, value: float, **optional) -> None:
        row = {"step": int(step), "epoch": round(float(epoch), 4), "split": split, "metric": metric,
               "value": _json_number(value)}
        row.update({k: v for k, v in optional.items() if v is not None})
        validate_row(row)
        self._fh.write(json.dumps(row) + "\n")
        self._fh.flush()
        for mirror in self.mirrors:
            mirror.log_row(row)

    def close(self) -> None:
        """Flush and fsync the rows (a run is marked DONE only after this), then close the file."""
        self._fh.flush()
        if self.path.is_file():  # not /dev/null (the writers of non-main ranks)
            os.fsync(self._fh.fileno())
        self._fh.close()
        for mirror in self.mirrors:
            mirror.close()


def _json_number(value: float) -> float | str:
    """JSON has no NaN/inf; keep them as strings the reader turns back into floats."""
    value = float(value)
    return value if math.isfinite(value) else str(value)


def truncate_after(path: Path, step: int) -> None:
    """Drop rows logged after ``step`` (and any torn last line): a resumed run re-logs them."""
    path = Path(path)
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("step", math.inf) <= step:
            kept.append(line)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    tmp.replace(path)


def count_rows(path: Path) -> tuple[int, int | None]:
    """(number of whole rows, largest step) of a metrics file: what a finished run's summary records, so that
    a reader can tell a complete metrics file from a truncated or replaced one."""
    rows, last = 0, None
    path = Path(path)
    if not path.exists():
        return 0, None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            step = json.loads(line)["step"]
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
        rows += 1
        last = step if last is None else max(last, step)
    return rows, last


def read_metrics(path: Path) -> pd.DataFrame:
    """Read a run's rows back, checking each against the schema; a torn last line is skipped."""
    rows = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break  # a run killed mid-write
            raise SchemaError(f"{path}:{i + 1}: not JSON") from None
        rows.append(validate_row(row))
    frame = pd.DataFrame(rows, columns=list(REQUIRED) + list(OPTIONAL))
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    return frame

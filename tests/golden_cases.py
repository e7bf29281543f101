"""The golden regression cases: tiny training jobs whose every number is kept in ``tests/golden/<case>.json``.

A case is a list of Hydra overrides run through the real entry point ``normrepro.train.run`` on the tests'
fake datasets (``helpers.py``). What it records (``record_case``): the parameter count, status, the summary's
``final``/``best`` dicts, the L2 norm of every parameter and floating buffer of the trained model, and every
metrics row except the wall-clock ``samples_per_s``. ``compare`` checks a fresh record against a blessed one
with a tight tolerance; ``tests/test_golden.py`` does that for every file, ``scripts/bless_golden.py``
writes the files (docs/golden.md: when re-blessing is right).

- **Model cases** (``<arch>-<norm kind>-<weight_param>``, ``<rnn arch>-<cell>``): every feed-forward
  architecture x norm kind x weight parameterization that ``validate_config`` accepts, and every recurrent
  cell under both recurrent architectures, 12 SGD steps with a training row at every step.
- **Instrument cases** (``instr-...``): a few jobs that between them switch on every measurement and
  test-time-statistics option of the training loop.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
from pathlib import Path

from helpers import SMOKE, compose_cfg, data_overrides

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
# A row is identified by these fields; its numbers are `value` and `epoch`.
ROW_KEYS = ("step", "split", "metric", "layer", "unit", "bn_mode")
RTOL, ATOL = 1e-5, 1e-7
# On another CPU model (other SIMD kernels) or torch version, float32 rounding differs by ~1e-6 per op, and
# 12 training steps amplify it chaotically (OWN's eigendecomposition most: accuracies moved by whole examples
# between an Intel and an AMD EPYC machine). There the numbers are compared only up to step 1 (before the
# first update has fed a difference back), at this looser tolerance; structure (params, status, the set of
# rows, final/best and tensor keys) is compared in full everywhere.
PORTABLE_RTOL, PORTABLE_ATOL, PORTABLE_LAST_STEP = 1e-3, 1e-6, 1
WALL_CLOCK_METRICS = ("samples_per_s", "norm_step_ms")  # timings: not reproducible numbers
BLESS_HINT = ("run `python scripts/bless_golden.py {case}` only if this change of numbers is intended "
              "(docs/golden.md); a pure refactor must not need it")

# 12 steps, a training row every step, evaluations at 0, 6, 12; tiny splits; no checkpoint files.
COMMON = [*SMOKE, "train.steps=12", "train.eval_every=6", "train.log_every=1", "train.ckpt_every=0",
          "train.batch_size=16", "train.eval_batch_size=32", "data.train_limit=128", "data.eval_limit=32",
          "probes.examples=32"]
# Per architecture: its data set and the overrides that make it tiny.
ARCH_SETUPS: dict[str, tuple[str, list[str]]] = {
    "mlp": ("mnist", ["model=mlp", "model.widths=[16,16]"]),
    "vgg": ("cifar10", ["model=vgg", "model.stages=[4,8]", "model.convs_per_stage=1", "model.width_mult=1.0"]),
    "resnet": ("cifar10", ["model=resnet", "model.depth=8", "model.base_width=4"]),
    "rnn": ("mnist", ["norm=none", "model.arch=rnn", "model.hidden=8", "model.pixels_per_step=49"]),
    "char_rnn": ("ptb_char", ["norm=none", "model.arch=char_rnn", "model.hidden=8", "data.seq_len=16"]),
}
# Per norm kind / weight parameterization: settings that make it differ from its neighbours at tiny widths
# (4 channels in 2 groups is not instance norm; OWN in groups of 4 rows has several groups per layer).
NORM_EXTRAS = {"gn": ["norm.groups=2"]}
WEIGHT_PARAM_EXTRAS = {"own": ["model.own_group_size=4"]}

INSTRUMENT_CASES: dict[str, tuple[str, list[str]]] = {
    # training window averaged over several steps, dynamics only on log steps, stuck units (N, C),
    # per-unit ReLU activity, the BN scale check, gradient clipping, dropout, the train_eval split
    "instr-mlp-dynamics-stuck": ("mlp", [
        "norm=bn", "train.log_every=5", "train.eval_every=4", "probes.dynamics=true",
        "probes.unit_activity=true", "probes.stuck_epochs=1", "probes.scale_check=true",
        "train.eval_train_examples=32", "optim.grad_clip=0.5", "model.dropout_hidden=0.2"]),
    # ghost batches with a slow second average, and every BN test-time statistic; sigmoid probes;
    # a step schedule
    "instr-mlp-ghost-teststats": ("mlp", [
        "norm=bn", "norm.ghost_batch=8", "norm.momentum_slow=0.01", "train.eval_batch_stats=true",
        "train.bn_eval_precise=[32,64]", "train.bn_eval_test_batches=[8,16]", "model.activation=sigmoid",
        "optim.schedule.kind=step", "optim.schedule.milestones=[0.5]"]),
    # conv: OWN (classifier too) and its orthogonality probe, dynamics (gamma cancellation on conv BN),
    # stuck units (N, C, H, W), augmentation (also of the precise-statistics images), batch statistics
    "instr-vgg-own-orthogonality": ("vgg", [
        "norm=bn", "model.weight_param=own", "model.weight_param_last=true", "model.own_group_size=4",
        "probes.orthogonality=true", "probes.dynamics=true", "probes.stuck_epochs=1",
        "probes.unit_activity=true", "data.augment=true", "train.bn_eval_precise=[32]",
        "train.eval_batch_stats=true", "optim.momentum=0.9", "optim.nesterov=true"]),
    # the orthogonality probe on WN layers, dynamics on hand-written BN, whole test batches
    "instr-resnet-wn-manual-bn": ("resnet", [
        "norm=bn_manual", "model.weight_param=wn", "probes.orthogonality=true", "probes.dynamics=true",
        "train.log_every=4", "train.eval_batch_stats=true", "train.bn_eval_test_batches=[16]",
        "optim.weight_decay=0.0005"]),
    # recurrent BN: dL/dh_t at step 0, shared-statistics and batch-statistics evaluation, noisy h0, RMSProp
    "instr-rnn-bn_lstm-hidden-shared": ("rnn", [
        "model.cell=bn_lstm", "probes.hidden_grad_norms=true", "train.eval_shared_stats=true",
        "train.eval_batch_stats=true", "train.eval_train_examples=16", "model.h0_noise=0.1",
        "optim=rmsprop", "optim.lr=0.001", "optim.grad_clip=1.0"]),
    # pooled statistics in training, a permuted pixel order
    "instr-rnn-bn_tanh_rnn-stats-shared": ("rnn", [
        "model.cell=bn_tanh_rnn", "model.stats_shared=true", "model.permute=true",
        "probes.hidden_grad_norms=true", "train.eval_shared_stats=true"]),
    # language model: integer inputs for the hidden-gradient probe, bpc rows, Adam with a cosine schedule
    "instr-char_rnn-bn_lstm-shared": ("char_rnn", [
        "model.cell=bn_lstm", "probes.hidden_grad_norms=true", "train.eval_shared_stats=true",
        "train.eval_batch_stats=true", "train.eval_train_examples=16", "optim=adam", "optim.lr=0.002",
        "optim.schedule.kind=cosine"]),
    # the toy problems at step 0 (ravine quadratics, deep-linear saddle), Adagrad
    "instr-mlp-toys-adagrad": ("mlp", [
        "norm=none", "optim=adagrad", "probes.ravine.enabled=true", "probes.ravine.kappas=[10.0,100.0]",
        "probes.saddle.enabled=true", "probes.saddle.max_steps=200"]),
    # whitening: decorrelation (batch and population), the normalization disturbance, the layer timing
    "instr-mlp-zca-decor-snd": ("mlp", [
        "norm=zca", "norm.group_size=4", "probes.decorrelation=true", "probes.snd_batch_sizes=[8,16]",
        "probes.snd_batches=4", "probes.snd_examples=4", "probes.norm_timing_groups=[4]"]),
    # init: per-layer activation / gradient std and weight ranks, a sweepable depth, tanh with Xavier
    "instr-mlp-init-stats": ("mlp", [
        "norm=none", "model.init=xavier", "model.activation=tanh", "model.mlp_depth=3",
        "probes.layer_stats=true", "probes.weight_rank=true"]),
    # activations: dead units and mean activation (PReLU), the dead-at-init Monte Carlo
    "instr-mlp-dead-units": ("mlp", [
        "norm=none", "model.activation=prelu", "probes.dead_units=true", "probes.dead_init_nets=16",
        "probes.dead_init_depths=[2,3]", "probes.dead_init_widths=[2]"]),
    # divergence is a result: the rows up to the non-finite loss; probes and gradient norms off
    "instr-mlp-diverges": ("mlp", [
        "norm=none", "optim.lr=1e6", "probes.enabled=false", "probes.grad_norms=false"]),
}


# ----------------------------------------------------------------------------------------- the cases
def is_valid(arch: str, kind: str, weight_param: str) -> bool:
    """Whether ``validate_config`` accepts this combination (on the schema's defaults otherwise)."""
    from normrepro.config import Config
    from normrepro.config_check import validate_config
    from normrepro.errors import ConfigError

    cfg = Config()  # the schema's dataclass: validate_config only reads attributes
    cfg.model.arch, cfg.norm.kind, cfg.model.weight_param = arch, kind, weight_param
    cfg.data.name = ARCH_SETUPS[arch][0] if arch in ARCH_SETUPS else cfg.data.name
    try:
        validate_config(cfg)
    except ConfigError:
        return False
    return True


@functools.cache
def model_cases() -> dict[str, tuple[str, list[str]]]:
    """``name -> (data set, overrides)`` for every registered combination (see the module docstring)."""
    from normrepro.models.build import ARCHS, RECURRENT_ARCHS
    from normrepro.norms import NORM_KINDS
    from normrepro.norms.weight_param import WEIGHT_PARAMS
    from normrepro.rnn import CELLS

    cases = {}
    for arch in ARCHS:
        if arch not in ARCH_SETUPS:
            continue  # test_golden's coverage test names it
        data, base = ARCH_SETUPS[arch]
        if arch in RECURRENT_ARCHS:
            for cell in CELLS:
                cases[f"{arch}-{cell}"] = (data, [*base, f"model.cell={cell}"])
            continue
        for kind in NORM_KINDS:
            for wp in WEIGHT_PARAMS:
                if is_valid(arch, kind, wp):
                    cases[f"{arch}-{kind}-{wp}"] = (data, [*base, f"norm={kind}", f"model.weight_param={wp}",
                                                           *NORM_EXTRAS.get(kind, []),
                                                           *WEIGHT_PARAM_EXTRAS.get(wp, [])])
    return cases


def all_cases() -> dict[str, tuple[str, list[str]]]:
    cases = dict(model_cases())
    for name, (arch, extra) in INSTRUMENT_CASES.items():
        data, base = ARCH_SETUPS[arch]
        cases[name] = (data, [*base, *extra])
    return cases


def case_overrides(data: str, overrides: list[str]) -> list[str]:
    """The full override list of a case, as composed (later overrides win)."""
    return [*COMMON, f"data={data}", *data_overrides(data), *overrides]


def golden_path(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.json"


# ----------------------------------------------------------------------------------------- recording
@contextlib.contextmanager
def model_catcher():
    """Catches the trained model without reaching into the engine: global forward hooks note every module
    called outside another module's forward. Afterwards ``catch()`` is the one with the most parameters, the
    last such called (the model of the final evaluation; a probe's float64 copy or the scale check's small
    network come earlier or are smaller)."""
    from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

    state = {"depth": 0, "best": None, "size": -1}

    def pre(module, _args):
        if state["depth"] == 0:
            size = sum(p.numel() for p in module.parameters())
            if size >= state["size"]:
                state["best"], state["size"] = module, size
        state["depth"] += 1

    def post(_module, _args, _output):
        state["depth"] -= 1

    handles = [register_module_forward_pre_hook(pre), register_module_forward_hook(post, always_call=True)]
    try:
        yield lambda: state["best"]
    finally:
        for h in handles:
            h.remove()


def tensor_norms(model) -> dict[str, float]:
    """L2 norm (in float64) of every parameter and of every floating-point buffer (``buffer:<name>``)."""
    out = {name: p.detach().double().norm().item() for name, p in model.named_parameters()}
    out.update({f"buffer:{name}": b.detach().double().norm().item() for name, b in model.named_buffers()
                if b.is_floating_point()})
    return {k: _json_number(v) for k, v in out.items()}


def record_case(name: str, run_dir: Path, extra: tuple[str, ...] = ()) -> dict:
    """Run case ``name`` in ``run_dir`` (the engine's environment variables must point at the fakes) and
    return its record, the content of its golden file; ``extra`` overrides come last (``device=cuda`` in
    tests/test_gpu.py)."""
    import torch

    from helpers import evaluated, read_rows
    from normrepro.train import run

    data, overrides = all_cases()[name]
    full = case_overrides(data, [*overrides, *extra])
    cfg = compose_cfg(full)
    with model_catcher() as caught:
        summary = run(cfg, run_dir, name)
    rows = [r for r in read_rows(run_dir) if r["metric"] not in WALL_CLOCK_METRICS]
    return {
        "case": name,
        "overrides": full,
        "torch": torch.__version__,  # another torch or CPU may round differently: see `same_platform`
        "cpu": cpu_model(),
        "params": summary["params"],
        "status": summary["status"],
        "steps_done": summary["steps_done"],
        # derived from the rows, as the analysis does (the goldens were blessed with the evaluator's own values)
        "final": {k: _json_number(v) for k, v in evaluated(run_dir, "final").items()},
        "best": {k: _json_number(v) for k, v in evaluated(run_dir, "best").items()},
        "tensor_norms": tensor_norms(caught()),
        "rows": rows,
    }


def _json_number(value):
    """As in metrics.jsonl: non-finite numbers as the strings 'nan', 'inf', '-inf' (strict JSON)."""
    value = float(value)
    return value if math.isfinite(value) else str(value)


def dumps(record: dict) -> str:
    """The golden file's text: one row per line, so a re-bless diff shows which rows moved."""
    head = {k: v for k, v in record.items() if k != "rows"}
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)},")
    rows = ",\n".join("    " + json.dumps(r) for r in record["rows"])
    lines.append(f'  "rows": [\n{rows}\n  ]')
    lines.append("}")
    return "\n".join(lines) + "\n"


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------- comparing
def cpu_model() -> str:
    """The CPU as far as rounding goes (``provenance.cpu_fingerprint``: model name, family/model/stepping,
    cache, torch's ISA); the platform's processor string off Linux."""
    import platform

    from normrepro.provenance import cpu_fingerprint
    from normrepro.provenance import cpu_model as from_cpuinfo

    return cpu_fingerprint() if from_cpuinfo() else platform.processor() or platform.machine()


def same_platform(expected: dict, actual: dict) -> bool:
    """Whether a golden file was blessed on this CPU model and torch version (then every number is compared)."""
    return expected.get("cpu") == actual.get("cpu") and expected.get("torch") == actual.get("torch")


def close(expected, actual, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """Numbers within rtol/atol; NaN equals NaN, infinities must match exactly."""
    e, a = float(expected), float(actual)
    if math.isnan(e) or math.isnan(a):
        return math.isnan(e) and math.isnan(a)
    if math.isinf(e) or math.isinf(a):
        return e == a
    return abs(a - e) <= atol + rtol * abs(e)


def row_key(row: dict) -> tuple:
    return tuple(row.get(k) for k in ROW_KEYS)


def _keyed(rows: list[dict]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault(row_key(r), []).append(r)
    return out


def first_difference(expected: dict, actual: dict) -> str | None:
    """None when ``actual`` matches the golden ``expected``; else one sentence naming the first difference:
    counts and status, then the rows in the golden file's order (matched by their ROW_KEYS, so only the
    order of the rows may change), then the final/best evaluations and the trained tensors' norms. Blessed on
    another CPU model or torch version, only the rows up to PORTABLE_LAST_STEP are compared by value."""
    exact = same_platform(expected, actual)
    tol = (RTOL, ATOL) if exact else (PORTABLE_RTOL, PORTABLE_ATOL)
    for field in ("params", "status", "steps_done"):
        if expected[field] != actual[field]:
            return f"{field} is {actual[field]!r}, golden {expected[field]!r}"
    got = _keyed(actual["rows"])
    want = _keyed(expected["rows"])
    for key, rows in want.items():
        n = len(got.get(key, []))
        if n == 0:
            return f"golden row {rows[0]} is missing"
        if n != len(rows):
            return f"row {dict(zip(ROW_KEYS, key))} appears {n} times, golden {len(rows)}"
        for e, a in zip(rows, got[key]):
            for field in ("value", "epoch"):
                compared = exact or field == "epoch" or e["step"] <= PORTABLE_LAST_STEP
                if compared and not close(e[field], a[field], *tol):
                    return f"row {a} differs in {field}: golden {e}"
    extra = [rows[0] for key, rows in got.items() if key not in want]
    if extra:
        return f"{len(extra)} row(s) the golden file lacks, first {extra[0]}"
    for field in ("final", "best", "tensor_norms"):
        e, a = expected[field], actual[field]
        if set(e) != set(a):
            return (f"{field} keys differ: missing {sorted(set(e) - set(a))}, "
                    f"unexpected {sorted(set(a) - set(e))}")
        for k in e:
            if exact and not close(e[k], a[k]):
                return f"{field}[{k!r}] is {a[k]!r}, golden {e[k]!r}"
    return None


def failure_message(case: str, expected: dict, difference: str) -> str:
    import torch

    note = "" if expected.get("torch") == torch.__version__ else \
        f" (blessed under torch {expected.get('torch')}, running {torch.__version__})"
    if expected.get("cpu") != cpu_model():
        note += f" (blessed on CPU {expected.get('cpu')!r}, running on {cpu_model()!r}: compared up to step " \
                f"{PORTABLE_LAST_STEP} at rtol {PORTABLE_RTOL:g})"
    return f"golden case {case}: {difference}{note}; {BLESS_HINT.format(case=case)}"

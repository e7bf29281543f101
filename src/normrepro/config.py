"""Typed schemas of every config group, registered in Hydra's ConfigStore.

The YAML files under ``configs/`` fill these dataclasses; a key that is not declared here, or a value of the
wrong type, is rejected by Hydra when the config is composed (e.g. ``optim.lrr=0.1`` fails naming the key).
Units are given next to each number.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from normrepro.config_toys import RavineConfig, SaddleConfig

# The config directory (``configs/`` of the checkout; NORMREPRO_CONFIGS points elsewhere).
CONFIG_DIR = os.environ.get("NORMREPRO_CONFIGS", str(Path(__file__).resolve().parents[2] / "configs"))

# Config keys that do not change a run's result (where it runs, how it reports, how often it checkpoints,
# the analysis blocks). The one list: the run-directory check (``result_config``) drops them, and every one a
# user can override is in configs/train.yaml's ``override_dirname.exclude_keys`` (tests/test_layers.py).
RESULT_NEUTRAL_KEYS = ("threads", "device", "paths", "logger", "data.root", "data.cache_dir",
                       "train.progress_every_s", "train.check_every", "train.ckpt_every", "train.discard_bad_checkpoint",
                       "train.allow_changed_conditions", "description", "claims", "plots", "derived", "paper",
                       "health", "deviations")


@dataclass
class DataConfig:
    name: str = "mnist"  # mnist | cifar10 | digits | mnist1d (generated) | ptb_char (character-level Penn Treebank)
    root: str = "${oc.env:NORMREPRO_DATA,data}"  # folder with MNIST/raw, cifar10/ or cifar-10-batches-py/
    cache_dir: str = "${oc.env:NORMREPRO_CACHE,.cache/normrepro}"  # decoded uint8 tensors, one file per set
    val_size: int = 5000  # examples carved from the official train split (fixed permutation)
    split_seed: int = 0  # seed of that permutation: the same validation set for every run
    train_limit: int | None = None  # examples: keep only the first N training examples (subset runs)
    eval_limit: int | None = None  # examples: cap validation and test sets (smoke scale)
    standardize: bool = True  # per-channel mean/std computed on the training split used
    order: str = "reshuffle"  # reshuffle (every epoch) | fixed (shuffled once) | sorted (by class)
    augment: bool = False  # batched random crop (pad 4 px) + horizontal flip
    seq_len: int = 100  # ptb_char: characters per window (train_limit/eval_limit then count windows)


@dataclass
class ModelConfig:
    arch: str = "mlp"  # mlp | vgg | resnet | rnn (sequential MNIST) | char_rnn (character language model)
    activation: str = "relu"  # relu | sigmoid | tanh | lrelu | prelu | elu | linear (identity: a deep linear net)
    placement: str = "before_act"  # where the norm sits: before_act (after the matmul) | after_act
    bias: bool = True  # bias of the layer feeding a norm (redundant under BN: see scale_invariance)
    # default (torch) | normal (N(0, init_std^2)) | xavier | kaiming | orthogonal (gain sqrt(2)) |
    # orthogonal_act (the activation's gain) | constant (every weight = init_std) | uniform_naive (U(+-1/sqrt(fan_in)))
    init: str = "default"
    init_std: float = 0.01  # std of the `normal` init; the value of the `constant` init
    # mlp
    widths: list[int] = field(default_factory=lambda: [100, 100, 100])  # hidden units per layer
    # A parameter budget instead of widths: `hidden_layers` layers of the one uniform width whose parameter
    # count (weights, biases, norm gamma/beta, head) is closest to it, within 2% (models/param_budget.py);
    # needs widths: [] (so no width is shown that is not used). 0 = off.
    param_budget: int = 0  # parameters
    hidden_layers: int = 1  # layers, used with param_budget only
    mlp_depth: int = 0  # > 0: that many hidden layers of widths[0] units each (a sweepable depth); 0: widths
    rescale_k: float = 1.0  # after init, multiply hidden layer `rescale_layer` by k and the next layer by 1/k
    rescale_layer: int = 1  # (1-based): the same network function, another parameterization ([S0])
    dropout_input: float = 0.0  # probability
    dropout_hidden: float = 0.0  # probability
    # vgg: stages of `convs_per_stage` 3x3 convs, each stage followed by 2x2 max-pool
    stages: list[int] = field(default_factory=lambda: [64, 128, 256])  # channels, before width_mult
    convs_per_stage: int = 2
    width_mult: float = 1.0
    # resnet (He et al. 2016, CIFAR variant): depth = 6n + 2
    depth: int = 20
    base_width: int = 16  # channels of the first stage
    # weight reparameterization of every conv/linear layer except the classifier (norms/weight_param.py)
    weight_param: str = "none"  # none | wn (Salimans & Kingma 2016) | own (Huang et al. 2018)
    weight_param_last: bool = False  # also reparameterize the classifier (the last Linear)
    own_group_size: int = 64  # rows (output channels) per OWN group, capped at fan_in - 1; [OWN]'s default 64
    own_eps: float = 1e-5  # added to the Gram matrix's eigenvalues before the inverse square root
    own_scale: float = 1.4142135623730951  # W = scale * orthonormal rows; sqrt(2) = He init's row norm (ReLU)
    # rnn / char_rnn (normrepro.rnn; norm.kind must be none: the cell chooses the normalization and uses
    # norm.eps and norm.momentum_pytorch)
    cell: str = "lstm"  # lstm | bn_sum | bn_input | bn_lstm | ln_lstm | bn_tanh_rnn | tanh_rnn
    hidden: int = 100  # units of the recurrent cell
    pixels_per_step: int = 1  # rnn: pixels read per step (1 = [C]'s T = 784 on MNIST)
    permute: bool = False  # rnn: a fixed random pixel permutation (pMNIST)
    permute_seed: int = 0  # rnn: seed of that permutation
    h0_noise: float = 0.0  # std of the N(0, s^2) initial hidden state in training ([C]'s seq-MNIST fix); 0 = off
    gamma_init: float = 0.1  # initial gain of every normalized cell's BN/LN ([C] Sec. 4)
    stats_shared: bool = False  # BN cells: one set of population statistics for all steps ([C]'s ablation)
    recurrent_init: str = "identity"  # W_h: identity | orthogonal | default
    forget_bias: float = 1.0  # initial forget-gate bias of the LSTM cells


@dataclass
class NormConfig:
    kind: str = "bn"  # none | bn | ln | gn | in | bn_manual (autograd-free BN) | bn_detached (stats not backpropagated)
    eps: float = 1e-5
    # PyTorch convention: weight of the *new* batch in the running average (= 1 - the paper's decay).
    momentum_pytorch: float = 0.1
    groups: int = 32  # gn: number of groups (capped by the channel count)
    affine: bool = True  # learn gamma and beta
    ghost_batch: int = 0  # examples per BN normalization group inside an SGD batch ([WJ]); 0 = the whole batch
    sync_impl: str = "manual"  # syncbn: manual (norms/sync_bn.py, any backend) | torch (nn.SyncBatchNorm, CUDA)
    momentum_slow: float | None = None  # bn: also keep a running average with this momentum (eval: bn_mode ema_slow)
    group_size: int = 16  # pca | zca | iternorm: features per whitening group (capped by the width; [DBN]'s 16)
    iter_T: int = 5  # iternorm: Newton iterations T ([IterNorm]'s default 5)


@dataclass
class ScheduleConfig:
    kind: str = "constant"  # constant | step | cosine | exponential
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])  # step: fractions of train.steps
    gamma: float = 0.1  # step: LR multiplier at each milestone
    final_ratio: float = 0.01  # exponential: LR at the last step / base LR ([OWN]'s VGG runs decay to 1/100)


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd | adam | rmsprop | adagrad
    lr: float = 0.1  # base learning rate
    lr_mult: float = 1.0  # the LR used is lr * lr_mult ([BN] 4.2.1's "x5", "x30" sweeps keep lr as the base)
    momentum: float = 0.0  # sgd and rmsprop
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adam
    alpha: float = 0.99  # rmsprop smoothing constant
    eps: float = 1e-8  # adam / rmsprop / adagrad
    grad_clip: float | None = None  # max global gradient L2 norm; null (or 0) = no clipping
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)


@dataclass
class TrainConfig:
    steps: int = 1000  # SGD steps (the budget unit of every experiment)
    batch_size: int = 60  # examples per step
    eval_every: int = 500  # steps between evaluations on val and test (also at step 0 and the end)
    log_every: int = 100  # steps between training loss/accuracy rows (averaged over those steps)
    ckpt_every: int = 5000  # steps between checkpoints; 0 = never
    # A checkpoint.pt that cannot be read: false = the job fails with one line; true = delete it and restart
    # the run from step 0 (result-neutral: the run then equals an uninterrupted one)
    discard_bad_checkpoint: bool = False
    # Resume a checkpoint made under other conditions (code, torch, device, threads, data: conditions.py);
    # false = refuse with one line. true = go on; summary.json lists what changed (conditions_changed)
    allow_changed_conditions: bool = False
    eval_batch_size: int = 1000  # examples per forward pass at evaluation
    eval_batch_stats: bool = False  # also evaluate BN with each test batch's own statistics (bn_mode batch)
    eval_shared_stats: bool = False  # also evaluate recurrent BN with statistics pooled over steps (bn_mode shared)
    eval_train_examples: int = 0  # also evaluate on this many training examples (split train_eval); 0 = off
    # At the final evaluation only (test split), BN's other test-time statistics ([WJ] Sec. 3):
    bn_eval_precise: list[int] = field(default_factory=list)  # examples: precise population statistics
    #   recomputed on this many training images (bn_mode precise@N; metric suffix _preciseN)
    bn_eval_test_batches: list[int] = field(default_factory=list)  # examples per test batch: normalize with
    #   each whole test batch's own statistics (bn_mode batch@n; metric suffix _batchN)
    # fp32 | bf16: the forward passes under bfloat16 autocast (precision.py says what stays float32)
    precision: str = "fp32"
    channels_last: bool = False  # convolutional models: NHWC images and weights (oneDNN's fast layout)
    progress_every_s: float = 15.0  # seconds between progress lines
    # Steps between checks that the training loss is finite: one host sync each, so none per step. Log,
    # evaluation and checkpoint steps always check first; a divergence is recorded at its exact step.
    check_every: int = 50


@dataclass
class ProbeConfig:
    enabled: bool = True
    examples: int = 1000  # fixed validation examples the probes look at
    units: list[int] = field(default_factory=lambda: [0, 1, 2])  # units of the last hidden layer to trace
    grad_norms: bool = True  # per-layer weight-gradient L2 norms at each log step
    dynamics: bool = False  # parameter norms, relative gradients/updates, gamma-gradient cancellation
    unit_activity: bool = False  # ReLU non-zero fraction per unit (heat maps), besides the per-layer mean
    orthogonality: bool = False  # mean |W W^T - I| per layer and group at each evaluation (OWN's property)
    scale_check: bool = False  # measure BN(aWu) = BN(Wu) and the 1/a gradient at step 0 ([BN] 3.3)
    hidden_grad_norms: bool = False  # recurrent models: ||dL/dh_t|| for every step t at step 0 ([C] Fig. 1a)
    layer_stats: bool = False  # per hidden layer: std of pre-activations, activations, dL/d(pre-activation)
    weight_rank: bool = False  # numerical rank and sigma_2 / sigma_1 of every Linear weight at each evaluation
    stuck_epochs: int = 0  # track, over the last N epochs, which (example, unit) ReLU outputs were always 0
    ravine: RavineConfig = field(default_factory=RavineConfig)
    saddle: SaddleConfig = field(default_factory=SaddleConfig)
    # whitening (measure/decorrelation.py, measure/disturbance.py, measure/norm_timing.py)
    decorrelation: bool = False  # ||Cov(normalized output) - I||_F per layer at each evaluation
    snd_batch_sizes: list[int] = field(default_factory=list)  # examples per batch: stochastic normalization
    #   disturbance of fixed examples normalized within random batches of each size; [] = off
    snd_batches: int = 16  # random batches per fixed example (K)
    snd_examples: int = 8  # fixed probe examples whose disturbance is averaged
    norm_timing_groups: list[int] = field(default_factory=list)  # features per group: time one norm layer's
    #   forward + backward at the end of training for each group size (ms); [] = off
    dead_units: bool = False  # per-layer dead-unit share and mean activation at each evaluation
    dead_init_nets: int = 0  # nets per cell: Monte Carlo of P(dead at init) over fresh inits at step 0; 0 = off
    dead_init_depths: list[int] = field(default_factory=list)  # hidden layers of those nets (one cell each)
    dead_init_widths: list[int] = field(default_factory=list)  # units per hidden layer (one cell each)


@dataclass
class DistConfig:
    nproc: int = 1  # processes of a data-parallel job; > 1: the job launches itself with torchrun
    backend: str = "auto"  # auto (nccl on CUDA, gloo on CPU) | gloo | nccl


@dataclass
class LoggerConfig:
    use_wandb: bool = False  # mirror every metric row to wandb (offline unless WANDB_MODE says otherwise)
    project: str = "normrepro"
    entity: str | None = None
    mode: str = "offline"  # used when WANDB_MODE is unset: offline | online | disabled


@dataclass
class ScaleConfig:
    name: str = "cpu"  # smoke (seconds, tests) | cpu (minutes, committed results) | full (the paper's setup)


@dataclass
class PathsConfig:
    runs: str = "${oc.env:NORMREPRO_RUNS,runs}"  # run directories
    results: str = "${oc.env:NORMREPRO_RESULTS,results}"  # committed reports


@dataclass
class Config:
    experiment_id: str = "adhoc"  # the claim id of docs/claims.md; names runs/<id>/ and results/<id>/
    description: str = ""  # the claim in one paragraph (goes into REPORT.md)
    seed: int = 0  # seeds init, data order, augmentation and dropout through separate generators
    threads: int = 0  # torch intra-op threads; 0 = every core this process may use (its CPU affinity: a Slurm
                      # job's cpus_per_task); the Makefile sets 1 per parallel job
    device: str = "cpu"  # cpu | cuda | auto
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    norm: NormConfig = field(default_factory=NormConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    dist: DistConfig = field(default_factory=DistConfig)
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    # analysis blocks (read by normrepro.analysis, not by training): see docs/adding-an-experiment.md
    derived: list[Any] = field(default_factory=list)
    claims: list[Any] = field(default_factory=list)
    plots: list[Any] = field(default_factory=list)
    health: list[Any] = field(default_factory=list)  # declared health checks of arms (analysis/health.py)
    deviations: list[Any] = field(default_factory=list)  # where this setup departs from the paper's (REPORT.md)
    paper: dict[str, Any] = field(default_factory=dict)  # the paper's numbers quoted in the report


def register_configs() -> None:
    """Register the root schema (configs/train.yaml lists it first in its defaults) and the resolvers."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    register_resolvers()


def register_resolvers() -> None:
    # An empty override string (a run of the defaults) still needs a directory name.
    OmegaConf.register_new_resolver("dirname", lambda s: s or "default", replace=True)
    # Budgets in images and linearly scaled learning rates ([GN]'s batch-size sweep): ${idiv:a,b}, ${mul:a,b}
    OmegaConf.register_new_resolver("idiv", lambda a, b: int(a) // int(b), replace=True)
    OmegaConf.register_new_resolver("mul", lambda a, b: float(a) * float(b), replace=True)


def result_config(cfg: DictConfig) -> dict:
    """The resolved config minus the result-neutral keys: two runs with equal result configs are the same run."""
    data = OmegaConf.to_container(cfg, resolve=True)
    for key in RESULT_NEUTRAL_KEYS:
        node, *rest = key.split(".")
        if rest:
            data.get(node, {}).pop(rest[0], None)
        else:
            data.pop(node, None)
    return data


def differing_keys(old, new, prefix=""):
    """Keys whose values differ. A key only the new config has is a schema addition whose default keeps the
    old behaviour (the rule for adding options), so runs made before it was added stay valid."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in old:
            if k in new:
                yield from differing_keys(old[k], new[k], f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}"
    elif old != new:
        yield prefix.rstrip(".")

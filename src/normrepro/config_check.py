"""``validate_config``: every choice and combination of a composed config checked at once, before any data
is loaded, with one error that names each bad key and its valid options (the registries are the source of
the valid options)."""

from __future__ import annotations


def validate_config(cfg) -> None:
    """Check every choice-valued field and every combination at once, so a typo fails before any data is
    loaded, naming the valid options (Hydra already rejects unknown keys and wrong types)."""
    from normrepro.errors import ConfigError

    errors = _choice_errors(cfg) + _combination_errors(cfg)
    if errors:
        raise ConfigError("invalid config: " + "; ".join(errors))


def _choice_errors(cfg) -> list[str]:
    """Values outside their registries, and numbers that must be positive."""
    from normrepro.data import NAMES as DATASETS
    from normrepro.data import ORDERS
    from normrepro.models import ARCHS
    from normrepro.models.common import ACTIVATIONS, INITS, PLACEMENTS
    from normrepro.norms import NORM_KINDS
    from normrepro.norms.registry import SYNC_IMPLS
    from normrepro.norms.weight_param import WEIGHT_PARAMS
    from normrepro.optim import OPTIMIZERS, SCHEDULES
    from normrepro.precision import PRECISIONS
    from normrepro.rnn import CELLS, RECURRENT_INITS

    choices = {
        "data.name": (cfg.data.name, DATASETS), "data.order": (cfg.data.order, ORDERS),
        "model.arch": (cfg.model.arch, ARCHS), "model.activation": (cfg.model.activation, tuple(ACTIVATIONS)),
        "model.placement": (cfg.model.placement, PLACEMENTS), "model.init": (cfg.model.init, INITS),
        "norm.kind": (cfg.norm.kind, NORM_KINDS), "model.weight_param": (cfg.model.weight_param, WEIGHT_PARAMS),
        "optim.name": (cfg.optim.name, OPTIMIZERS),
        "optim.schedule.kind": (cfg.optim.schedule.kind, SCHEDULES),
        "scale.name": (cfg.scale.name, ("smoke", "cpu", "full")),
        "train.precision": (cfg.train.precision, tuple(PRECISIONS)),
        "norm.sync_impl": (cfg.norm.sync_impl, SYNC_IMPLS), "dist.backend": (cfg.dist.backend, ("auto", "gloo", "nccl")),
        "model.cell": (cfg.model.cell, tuple(CELLS)), "model.recurrent_init": (cfg.model.recurrent_init, RECURRENT_INITS),
    }
    errors = [f"{key}={value!r} (valid: {', '.join(valid)})" for key, (value, valid) in choices.items()
              if value not in valid]
    positive = {"train.steps": cfg.train.steps, "train.batch_size": cfg.train.batch_size,
                "train.eval_every": cfg.train.eval_every, "train.log_every": cfg.train.log_every,
                "train.check_every": cfg.train.check_every,
                "optim.lr": cfg.optim.lr, "model.own_group_size": cfg.model.own_group_size,
                "model.own_eps": cfg.model.own_eps, "optim.schedule.final_ratio": cfg.optim.schedule.final_ratio,
                "norm.group_size": cfg.norm.group_size, "probes.snd_batches": cfg.probes.snd_batches,
                "probes.snd_examples": cfg.probes.snd_examples}
    return errors + [f"{key}={value} (must be > 0)" for key, value in positive.items() if not value > 0]


BATCH_STATISTICS_KINDS = ("bn", "bn_manual", "bn_detached", "syncbn", "pca", "zca", "iternorm")  # statistics
# over the examples of a batch
WHITENING_KINDS = ("pca", "zca", "iternorm")  # a running whitening matrix, no running variance
# statistics computed by this repository's code (in the input's dtype, or float64 for whitening)
HAND_STATISTICS_KINDS = ("bn_manual", "bn_detached", "syncbn", *WHITENING_KINDS)


def _combination_errors(cfg) -> list[str]:
    """Settings that are valid alone but not together."""
    errors = []
    if cfg.norm.kind == "in" and cfg.model.arch == "mlp":
        errors.append("norm.kind=in needs a conv model (an MLP layer has one value per channel and example)")
    if cfg.model.arch == "resnet" and cfg.model.placement != "before_act":
        errors.append("model.arch=resnet supports model.placement=before_act only")
    nc = cfg.norm
    if (nc.ghost_batch or nc.momentum_slow is not None) and nc.kind != "bn":
        errors.append(f"norm.ghost_batch / norm.momentum_slow need norm.kind=bn (got {nc.kind})")
    if nc.ghost_batch < 0 or (nc.ghost_batch and cfg.train.batch_size % nc.ghost_batch):
        errors.append(f"norm.ghost_batch={nc.ghost_batch} must be >= 0 and divide train.batch_size="
                      f"{cfg.train.batch_size}")
    per_normalization = cfg.train.batch_size // max(cfg.dist.nproc, 1) if not nc.ghost_batch else nc.ghost_batch
    if nc.kind in BATCH_STATISTICS_KINDS and cfg.model.arch == "mlp" and per_normalization == 1:
        # one example per batch: x - mean is 0, so every BN output is its beta and nothing can be learnt
        errors.append(f"norm.kind={nc.kind} normalizes over the batch, and an MLP's batch here has 1 example "
                      "(the output would be beta, whatever the input): use a batch of >= 2, or norm=ln")
    if cfg.dist.nproc < 1 or cfg.train.batch_size % cfg.dist.nproc:
        errors.append(f"dist.nproc={cfg.dist.nproc} must be >= 1 and divide train.batch_size={cfg.train.batch_size} "
                      "(the global batch)")
    if nc.kind == "syncbn" and nc.sync_impl == "torch" and not str(cfg.device).startswith(("cuda", "auto")):
        errors.append("norm.sync_impl=torch needs device=cuda (torch.nn.SyncBatchNorm refuses CPU tensors); "
                      "use norm.sync_impl=manual")
    if cfg.train.bn_eval_precise and cfg.model.arch in ("rnn", "char_rnn"):
        errors.append("train.bn_eval_precise needs a feed-forward model (recurrent BN keeps statistics per time step)")
    bad = [n for n in [*cfg.train.bn_eval_precise, *cfg.train.bn_eval_test_batches] if n < 1]
    if bad:
        errors.append(f"train.bn_eval_precise / train.bn_eval_test_batches need sizes >= 1, got {bad}")
    if nc.iter_T < 0:
        errors.append(f"norm.iter_T={nc.iter_T} must be >= 0 (Newton iterations)")
    if nc.kind in WHITENING_KINDS and cfg.train.bn_eval_precise:
        errors.append(f"train.bn_eval_precise needs BN's per-channel variance; norm.kind={nc.kind} keeps a "
                      "whitening matrix instead")
    if any(n < 2 for n in cfg.probes.snd_batch_sizes):
        errors.append(f"probes.snd_batch_sizes need batches of >= 2 examples, got {list(cfg.probes.snd_batch_sizes)}")
    if cfg.model.arch in ("rnn", "char_rnn") and cfg.norm.kind != "none":
        errors.append(f"model.arch={cfg.model.arch} needs norm=none (model.cell chooses the recurrent normalization)")
    if cfg.train.precision != "fp32" and (nc.kind in HAND_STATISTICS_KINDS or cfg.model.arch in ("rnn", "char_rnn")):
        what = f"norm.kind={nc.kind}" if nc.kind in HAND_STATISTICS_KINDS else f"model.arch={cfg.model.arch}"
        errors.append(f"train.precision={cfg.train.precision} needs BN whose statistics torch accumulates in float32; "
                      f"{what} computes them by hand in the input's dtype: use train.precision=fp32")
    if cfg.train.channels_last and cfg.model.arch not in ("vgg", "resnet"):
        errors.append(f"train.channels_last applies to convolutional models (vgg, resnet), not {cfg.model.arch}")
    m = cfg.model
    if m.param_budget and (m.arch != "mlp" or m.widths or m.hidden_layers < 1 or m.weight_param != "none"
                           or m.param_budget < 0):
        errors.append(f"model.param_budget={m.param_budget} needs model.arch=mlp, model.widths=[] (the width is "
                      f"solved), model.hidden_layers >= 1 and model.weight_param=none (got {m.arch}, "
                      f"{list(m.widths)}, {m.hidden_layers}, {m.weight_param})")
    if cfg.model.arch == "char_rnn" and cfg.data.name != "ptb_char":
        errors.append("model.arch=char_rnn needs data=ptb_char")
    if cfg.data.name == "ptb_char" and cfg.model.arch != "char_rnn":
        errors.append("data=ptb_char needs model.arch=char_rnn")
    return errors

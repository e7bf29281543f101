"""Builds the configured architecture with the configured norm in every normalized layer."""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

from normrepro.errors import ConfigError
from normrepro.models.common import init_weights
from normrepro.models.mlp import MLP
from normrepro.models.param_budget import width_for_budget
from normrepro.models.resnet import ResNet
from normrepro.models.rnn import CharLanguageModel, SequenceClassifier
from normrepro.models.vgg import VGG
from normrepro.norms import make_norm
from normrepro.norms.weight_param import apply_weight_param


def _mlp(m, norm, input_shape, num_classes):
    return MLP(input_shape, num_classes, mlp_widths(m, norm, input_shape, num_classes), m.activation, m.placement,
               norm, m.dropout_input, m.dropout_hidden, m.bias)


def mlp_widths(m, norm, input_shape, num_classes) -> list[int]:
    """``model.widths`` (``model.mlp_depth`` > 0: that many copies of its first width), or with
    ``model.param_budget`` > 0, ``model.hidden_layers`` layers of the uniform width
    whose parameter count is closest to the budget (models/param_budget.py; the run's summary.json records
    the count it got as ``params``)."""
    if not m.param_budget:
        return [m.widths[0]] * m.mlp_depth if m.mlp_depth > 0 else list(m.widths)
    probe = 16  # a norm's parameters per unit, counted on a small instance (gamma and beta: 2; none: 0)
    per_unit = int(m.bias) + sum(p.numel() for p in norm(probe, 0).parameters()) // probe
    try:
        width = width_for_budget(m.param_budget, m.hidden_layers, math.prod(input_shape), num_classes, per_unit)
    except ValueError as err:
        raise ConfigError(f"model.param_budget={m.param_budget}: {err}") from err
    return [width] * m.hidden_layers


def _vgg(m, norm, input_shape, num_classes):
    return VGG(input_shape, num_classes, list(m.stages), m.convs_per_stage, m.width_mult, m.activation,
               m.placement, norm, m.bias, m.dropout_hidden)


def _resnet(m, norm, input_shape, num_classes):
    return ResNet(input_shape, num_classes, m.depth, m.base_width, m.activation, norm, m.bias, m.placement)


# model.arch -> builder(model config, norm factory, input shape, classes) of a feed-forward network
FEED_FORWARD = {"mlp": _mlp, "vgg": _vgg, "resnet": _resnet}
# model.arch -> recurrent model class(model config, norm config, input shape, classes): the cell chooses the
# normalization (model.cell), not norm.kind
RECURRENT = {"rnn": SequenceClassifier, "char_rnn": CharLanguageModel}
ARCHS = {**FEED_FORWARD, **RECURRENT}
RECURRENT_ARCHS = tuple(RECURRENT)


def build_model(model_cfg, norm_cfg, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    m = model_cfg
    if m.arch in RECURRENT:
        return RECURRENT[m.arch](m, norm_cfg, input_shape, num_classes)
    if m.arch not in FEED_FORWARD:
        raise ValueError(f"unknown model.arch {m.arch!r}; valid: {', '.join(ARCHS)}")
    net = FEED_FORWARD[m.arch](m, partial(_norm_for, norm_cfg), input_shape, num_classes)
    init_weights(net, m.init, m.init_std, m.activation)
    if m.rescale_k != 1.0:
        rescale(net, m.rescale_layer, m.rescale_k)
    # after init: OWN's proxy V / WN's direction v start from the configured initial weights
    apply_weight_param(net, m.weight_param, last=m.weight_param_last, own_group_size=m.own_group_size,
                       own_eps=m.own_eps, own_scale=m.own_scale)
    return net


@torch.no_grad()
def rescale(net: nn.Module, layer: int, k: float) -> None:
    """[S0]'s example: W_l, b_l *= k and W_{l+1} /= k. With a positively homogeneous nonlinearity (ReLU)
    and k > 0 the network computes the same function, but SGD sees a different parameterization."""
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not isinstance(net, MLP) or not 1 <= layer < len(linears) or k <= 0:
        raise ConfigError(f"model.rescale_k needs an MLP, 1 <= model.rescale_layer < {len(linears)} and k > 0")
    first, second = linears[layer - 1], linears[layer]
    first.weight.mul_(k)
    if first.bias is not None:
        first.bias.mul_(k)
    second.weight.div_(k)


def _norm_for(norm_cfg, num_features: int, dims: int) -> nn.Module:
    return make_norm(norm_cfg.kind, num_features, dims, eps=norm_cfg.eps,
                     momentum_pytorch=norm_cfg.momentum_pytorch, groups=norm_cfg.groups,
                     affine=norm_cfg.affine, ghost_batch=norm_cfg.ghost_batch,
                     momentum_slow=norm_cfg.momentum_slow, sync_impl=norm_cfg.sync_impl,
                     group_size=norm_cfg.group_size, iter_T=norm_cfg.iter_T)

"""VGG-style CIFAR network (Simonyan & Zisserman 2015, narrowed for CIFAR): stages of 3x3 conv -> NormAct,
a 2x2 max-pool after each stage, global average pooling and one linear classifier."""

from __future__ import annotations

import torch
from torch import nn

from normrepro.models.common import NormAct, make_activation


class ConvLayer(nn.Module):
    def __init__(self, c_in: int, c_out: int, norm: nn.Module, activation: str, placement: str, bias: bool):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias)
        self.block = NormAct(norm, make_activation(activation), placement)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.conv(x))


class VGG(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, stages: list[int], convs_per_stage: int,
                 width_mult: float, activation: str, placement: str, make_norm, bias: bool = True,
                 dropout_hidden: float = 0.0):
        super().__init__()
        c, layers = input_shape[0], []
        for width in stages:
            c_out = max(1, round(width * width_mult))
            for _ in range(convs_per_stage):
                layers.append(ConvLayer(c, c_out, make_norm(c_out, 2), activation, placement, bias))
                c = c_out
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout_hidden)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x).mean(dim=(2, 3))))

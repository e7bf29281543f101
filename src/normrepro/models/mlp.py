"""Fully connected classifier: [BN] Sec. 4.1's MNIST net (784-100-100-100-10, sigmoid) and its variants.

Each hidden layer is Linear -> NormAct (norm before or after the nonlinearity) -> Dropout; the output layer
is a plain Linear producing logits.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from normrepro.models.common import NormAct, make_activation


class HiddenLayer(nn.Module):
    def __init__(self, d_in: int, d_out: int, norm: nn.Module, activation: str, placement: str,
                 dropout: float, bias: bool):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out, bias=bias)
        self.block = NormAct(norm, make_activation(activation), placement)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.block(self.linear(x)))


class MLP(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, widths: list[int], activation: str,
                 placement: str, make_norm, dropout_input: float = 0.0, dropout_hidden: float = 0.0,
                 bias: bool = True):
        super().__init__()
        d = math.prod(input_shape)
        self.input_dropout = nn.Dropout(dropout_input)
        layers = []
        for w in widths:
            layers.append(HiddenLayer(d, w, make_norm(w, 0), activation, placement, dropout_hidden, bias))
            d = w
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(d, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.input_dropout(x.flatten(1))))

"""CIFAR ResNet of He et al. 2016 (Sec. 4.2): depth 6n+2, three stages of n basic blocks with 16/32/64
channels (times base_width/16), stride-2 stage transitions, a 1x1 conv + norm projection shortcut where the
shape changes, global average pooling. The norm follows each conv (before the nonlinearity, as in the paper).
"""

from __future__ import annotations

import torch
from torch import nn

from normrepro.models.common import NormAct, make_activation


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, make_norm, activation: str, bias: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=bias)
        self.block1 = NormAct(make_norm(c_out, 2), make_activation(activation), "before_act")
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=bias)
        self.norm2 = make_norm(c_out, 2)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          make_norm(c_out, 2))
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm2(self.conv2(self.block1(self.conv1(x))))
        return self.act(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, depth: int, base_width: int,
                 activation: str, make_norm, bias: bool = False, placement: str = "before_act"):
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1 (8, 14, 20, ...), got {depth}")
        if placement != "before_act":
            raise ValueError("the ResNet supports model.placement=before_act only (the norm follows each conv)")
        n = (depth - 2) // 6
        c = base_width
        self.stem = nn.Conv2d(input_shape[0], c, 3, padding=1, bias=bias)
        self.stem_block = NormAct(make_norm(c, 2), make_activation(activation), "before_act")
        blocks, c_in = [], c
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(c_in, width, stride, make_norm, activation, bias))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.stem_block(self.stem(x)))
        return self.head(out.mean(dim=(2, 3)))

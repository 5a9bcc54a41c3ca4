"""A small 2D U-Net for tissue segmentation of axial slices.

Each level holds two 3x3 convolutions with batch norm and (non in-place) ReLU modules, so that
guided backpropagation (which hooks ``nn.ReLU`` modules) applies to every non-linearity. Inputs
whose height or width is not a multiple of ``2**depth`` are zero-padded on the far side and the
output is cropped back, so any slice size works.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=False),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=False),
    )


class UNet2d(nn.Module):
    """2D U-Net: ``depth`` poolings, ``base_channels * 2**level`` channels, logits of ``n_classes``.

    Args:
        in_channels: input channels (1 for one contrast).
        n_classes: output classes (4: background, GM, WM, CSF).
        base_channels: channels of the first level.
        depth: number of 2x2 max-poolings (the bottleneck sits at ``1 / 2**depth`` resolution).
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 4, base_channels: int = 8, depth: int = 3) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("n_classes", n_classes), ("base_channels", base_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes!r}")
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
        self.depth = depth
        widths = [base_channels * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList()
        c_in = in_channels
        for width in widths[:-1]:
            self.down.append(_block(c_in, width))
            c_in = width
        self.pool = nn.MaxPool2d(2)
        self.bottom = _block(widths[-2], widths[-1])
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for level in reversed(range(depth)):
            self.up.append(nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2))
            self.dec.append(_block(2 * widths[level], widths[level]))
        self.head = nn.Conv2d(widths[0], n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes, H, W)`` of a batch ``(B, in_channels, H, W)``."""
        if x.ndim != 4:
            raise ValueError(f"UNet2d expects (B, C, H, W), got shape {tuple(x.shape)}")
        height, width = x.shape[-2:]
        multiple = 2**self.depth
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)[..., :height, :width]

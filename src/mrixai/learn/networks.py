"""CNN architectures for MRI classification, built by name with :func:`build_model`.

Every model is a :class:`ConvNet`: ``features`` (an ``nn.Sequential`` of blocks, each block an
``nn.Sequential``), then ``torch.flatten(..., 1)``, then ``classifier`` (an ``nn.Sequential``).
Inputs are ``(B, 1, *input_shape)``. The flattened size is found by a dry forward pass of a zero
tensor through the blocks in the constructor (in eval mode and without gradients, so batch-norm
running statistics are not touched), so no lazy layers are needed. Activations are never
in-place, so attribution methods can hook every layer.

Models (``MODEL_NAMES``):

``boehle3d``
    Böhle et al. (2019), Front. Aging Neurosci.: four blocks of
    ``[Conv3d 3x3x3 pad 1, BatchNorm3d, ReLU, MaxPool3d]`` with 8/16/32/64 filters and pooling
    kernels (= strides) 2/3/2/3, then ``[Linear(flat, 128), ReLU, Dropout(0.4), Linear(128, C)]``.
    A pool runs with ``ceil_mode=True`` only when some spatial axis is shorter than its kernel,
    so small inputs (e.g. 24x28x24) still give at least one voxel per axis.
``boehle3d_pif``
    Eitel et al. (2021), Sci. Rep.: the same network with the last block's convolution replaced
    by a :class:`PatchIndividualConv3d` (patch individual filters). Its block outputs
    ``2 * 64`` channels with ``overlap=True`` (the two strains are concatenated, see the class).
``elu64``
    After the multiple-sclerosis transfer study of Eitel et al. (2019), NeuroImage: Clinical:
    four blocks of ``[Conv3d 3x3x3 pad 1 with 64 filters, BatchNorm3d, ELU, MaxPool3d 2
    (ceil_mode)]``, then ``[Dropout(0.4), Linear(flat, C)]``. 64 filters in every convolution
    and ELU activations are the essence of that network; a single linear layer on top keeps the
    classifier small, as the 64-channel maps at 1/16 resolution are already large
    (18,432 features for a 96x114x96 input).
``caffenet2d``
    A small CaffeNet/AlexNet-like 2D network for 32x32 or 64x64 sub-images: five blocks of
    ``[Conv2d 3x3 pad 1, BatchNorm2d, ReLU]`` with 32/64/96/96/64 filters, 2x2 max-pooling after
    the first, second and fifth convolution, then ``[Linear(flat, 256), ReLU, Dropout(0.5),
    Linear(256, 128), ReLU, Dropout(0.5), Linear(128, C)]``. Batch norm replaces CaffeNet's
    local response normalisation (``batchnorm=False`` leaves it out).

Transfer learning: :func:`freeze_blocks` stops the gradients of the first ``n`` feature blocks
and keeps their batch norms in eval mode (see :func:`set_frozen_eval`).
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

MODEL_NAMES = ("boehle3d", "boehle3d_pif", "elu64", "caffenet2d")

STRAINS = ("main", "shifted")


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------


def _check_int(name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an int no smaller than ``minimum``, else ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_ints(name: str, values: object, length: int | None = None) -> tuple[int, ...]:
    """A tuple of positive ints (of ``length`` items when given), else ``ValueError``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a sequence of positive integers, got {values!r}")
    if length is not None and len(values) != length:
        raise ValueError(f"{name} must have {length} items, got {len(values)}: {tuple(values)!r}")
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{name} must be a non-empty sequence of positive integers, got {values!r}")
    return tuple(values)


def _check_dropout(value: object) -> float:
    """A dropout probability in [0, 1), else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1), got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------
# Patch individual filter layer
# ---------------------------------------------------------------------------------------------


def cut_patches(x: torch.Tensor, start: int, p: int, grid: Sequence[int]) -> torch.Tensor:
    """Patches of edge ``p`` from ``start`` on every axis, stacked into channels.

    ``(B, C, D, H, W) -> (B, N * C, p, p, p)`` with ``N = prod(grid)`` patches in (d, h, w) order.
    The block ``start : start + grid * p`` is taken on every axis; where the map ends before it
    (the last patches of the main strain), it is zero-padded at the high end.
    """
    batch, channels = x.shape[:2]
    part = x[:, :, start : start + grid[0] * p, start : start + grid[1] * p, start : start + grid[2] * p]
    high = [g * p - d for g, d in zip(grid, part.shape[2:])]
    part = F.pad(part, (0, high[2], 0, high[1], 0, high[0]))
    # (B, C, nD, p, nH, p, nW, p) -> (B, nD, nH, nW, C, p, p, p) -> (B, N * C, p, p, p)
    part = part.reshape(batch, channels, grid[0], p, grid[1], p, grid[2], p)
    return part.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(batch, math.prod(grid) * channels, p, p, p)


def assemble_patches(
    out: torch.Tensor, start: int, p: int, grid: Sequence[int], input_shape: Sequence[int]
) -> torch.Tensor:
    """Inverse of :func:`cut_patches` for per-patch outputs: ``(B, N * O, p, p, p)`` back to a
    ``(B, O, *input_shape)`` map (outputs at padding voxels cropped; zero where no patch lies)."""
    batch = out.shape[0]
    channels = out.shape[1] // math.prod(grid)
    # (B, N * O, p, p, p) -> (B, O, nD, p, nH, p, nW, p) -> (B, O, nD * p, nH * p, nW * p)
    out = out.reshape(batch, grid[0], grid[1], grid[2], channels, p, p, p)
    out = out.permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(batch, channels, *(g * p for g in grid))
    covered = [min(g * p, d - start) for g, d in zip(grid, input_shape)]
    out = out[:, :, : covered[0], : covered[1], : covered[2]]
    high = [d - start - c for d, c in zip(input_shape, covered)]
    return F.pad(out, (start, high[2], start, high[1], start, high[0]))


class PatchIndividualConv3d(nn.Module):
    """3D convolution with its own filters for every patch of the feature map (no weight sharing).

    Eitel et al. (2021), Sci. Rep. 11:24447. The input map of spatial size ``input_shape`` is cut
    into non-overlapping cubes of ``patch_size`` voxels per axis (the "main" strain, starting at
    voxel 0; where an axis is not a multiple of ``patch_size`` its last patch is zero-padded at
    the high end, so the whole map is covered). Every patch is convolved with its own
    ``out_channels`` filters of ``kernel_size`` voxels, zero-padded by ``kernel_size // 2``
    inside the patch, so a patch's output depends only on the input inside it and on its own
    weights.

    With ``overlap=True`` a second, "shifted" strain of patches (the paper's overlapping patches,
    shifted by half a patch so that the borders of the main patches lie at their centres) starts
    at ``s = patch_size // 2`` on every axis and holds only patches that lie wholly inside the
    map: ``(n - s) // patch_size`` patches along an axis of ``n`` voxels. That is one patch per
    border between two main patches (``ceil(n / patch_size) - 1``, the count of the authors'
    implementation), except that a shifted patch that would reach past the end of the map (when
    the last main patch holds fewer than ``s`` voxels) is left out instead of being zero-padded.
    No shifted patch is padded, and the ``s`` voxels at the low edge and any voxels past the last
    shifted patch are covered by the main strain only (zero in the shifted strain's map). An axis
    too short for one shifted patch (``n < s + patch_size``) is a ``ValueError``.

    Combination of the strains: each strain gives a map of ``out_channels`` channels and the
    input's spatial size (outputs at padding voxels are cropped, so the layer is a drop-in
    replacement for ``Conv3d(kernel_size, padding=kernel_size // 2)``), and the two maps are
    concatenated along channels: the layer outputs ``n_output_channels = out_channels *
    n_strains`` channels, main strain first. This follows the authors' published implementation
    (github.com/derEitel/patch_individual_filter_layer, ``pif.py``), which concatenates the
    outputs of the original and the overlapping patches (its models feed all patches' outputs
    of both strains to the dense layers: e.g. 1134 = (12 + 2) patches x 3 filters x 3**3 voxels
    for a 10x13x10 map with 5**3 patches), rather than summing or averaging them.

    Each strain is computed as ONE grouped convolution: the patches are moved into the channel
    dimension (``(B, C, D, H, W) -> (B, N * C, p, p, p)`` for ``N`` patches) and convolved with
    ``groups=N``. :class:`PatchIndividualConv3dLoop` is a per-patch reference with the same
    parameters (see :func:`copy_weights`).

    Parameters are ``weights[strain]`` of shape ``(N, out_channels, in_channels, k, k, k)`` and
    ``biases[strain]`` of shape ``(N, out_channels)``; patch ``n`` of a strain with
    ``(nD, nH, nW)`` patches is the one at grid position ``np.unravel_index(n, (nD, nH, nW))``.
    Initialisation follows ``nn.Conv3d`` (uniform in ``±1 / sqrt(in_channels * k**3)``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        input_shape: Sequence[int],
        patch_size: int = 2,
        overlap: bool = True,
        kernel_size: int = 3,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = _check_int("in_channels", in_channels)
        self.out_channels = _check_int("out_channels", out_channels)
        self.input_shape = _check_ints("input_shape", input_shape, length=3)
        self.patch_size = _check_int("patch_size", patch_size)
        if not isinstance(overlap, bool):
            raise ValueError(f"overlap must be True or False, got {overlap!r}")
        self.kernel_size = _check_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same-size output), got {kernel_size!r}")
        if overlap and patch_size < 2:
            raise ValueError(f"overlap=True needs patch_size >= 2 (shift patch_size // 2), got {patch_size!r}")
        if overlap and min(self.input_shape) < patch_size + patch_size // 2:
            raise ValueError(
                f"overlap=True needs every axis of the feature map to hold one shifted patch "
                f"(>= patch_size + patch_size // 2 = {patch_size + patch_size // 2} voxels), got "
                f"input_shape={self.input_shape!r}; use overlap=False or a larger input"
            )
        self.overlap = overlap
        self.strains = STRAINS if overlap else STRAINS[:1]
        self.n_output_channels = out_channels * len(self.strains)
        self.weights = nn.ParameterDict()
        self.biases = nn.ParameterDict()
        bound = 1.0 / math.sqrt(in_channels * kernel_size**3)
        for strain in self.strains:
            n = self.n_patches(strain)
            weight = torch.empty(n, out_channels, in_channels, kernel_size, kernel_size, kernel_size)
            self.weights[strain] = nn.Parameter(nn.init.uniform_(weight, -bound, bound))
            if bias:
                self.biases[strain] = nn.Parameter(nn.init.uniform_(torch.empty(n, out_channels), -bound, bound))

    def offset(self, strain: str) -> int:
        """Voxel at which the first patch of ``strain`` starts on every axis."""
        if strain not in self.strains:
            raise ValueError(f"unknown strain {strain!r}; this layer has {self.strains}")
        return 0 if strain == "main" else self.patch_size // 2

    def grid(self, strain: str) -> tuple[int, int, int]:
        """Number of patches of ``strain`` along each axis.

        Main strain: ``ceil(n / patch_size)`` (the last one padded when it does not fit);
        shifted strain: ``(n - patch_size // 2) // patch_size`` (wholly inside the map).
        """
        start = self.offset(strain)
        if strain == "main":
            return tuple(math.ceil(d / self.patch_size) for d in self.input_shape)
        return tuple((d - start) // self.patch_size for d in self.input_shape)

    def n_patches(self, strain: str) -> int:
        """Number of patches (= filter sets) of ``strain``."""
        return math.prod(self.grid(strain))

    def patch_region(self, strain: str, index: int) -> tuple[slice, slice, slice]:
        """Output voxels (inside ``input_shape``) that patch ``index`` of ``strain`` produces."""
        grid = self.grid(strain)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < math.prod(grid):
            raise ValueError(f"patch index must be in [0, {math.prod(grid)}) for strain {strain!r}, got {index!r}")
        start = self.offset(strain)
        position = []
        for n in reversed(grid):
            position.append(index % n)
            index //= n
        position.reverse()
        return tuple(
            slice(start + i * self.patch_size, min(start + (i + 1) * self.patch_size, d))
            for i, d in zip(position, self.input_shape)
        )

    def _bias(self, strain: str) -> torch.Tensor | None:
        """The bias of ``strain`` or None when the layer has none."""
        return self.biases[strain] if strain in self.biases else None

    def _strain_forward(self, x: torch.Tensor, strain: str) -> torch.Tensor:
        """One strain's output map ``(B, out_channels, *input_shape)`` by a grouped convolution."""
        start, p, k = self.offset(strain), self.patch_size, self.kernel_size
        grid = self.grid(strain)
        n = math.prod(grid)
        part = cut_patches(x, start, p, grid)
        weight = self.weights[strain].reshape(n * self.out_channels, x.shape[1], k, k, k)
        bias = self._bias(strain)
        out = F.conv3d(part, weight, None if bias is None else bias.reshape(-1), padding=k // 2, groups=n)
        return assemble_patches(out, start, p, grid, self.input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, *input_shape) -> (B, n_output_channels, *input_shape)``."""
        if x.dim() != 5 or x.shape[1] != self.in_channels or tuple(x.shape[2:]) != self.input_shape:
            raise ValueError(
                f"expected input (B, {self.in_channels}, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(x.shape)}"
            )
        return torch.cat([self._strain_forward(x, strain) for strain in self.strains], dim=1)

    def extra_repr(self) -> str:
        """Shown by ``print(module)``."""
        grids = ", ".join(f"{s}={'x'.join(map(str, self.grid(s)))}" for s in self.strains)
        return (
            f"{self.in_channels}, {self.out_channels}, input_shape={self.input_shape}, "
            f"patch_size={self.patch_size}, kernel_size={self.kernel_size}, patches: {grids}"
        )


class PatchIndividualConv3dLoop(PatchIndividualConv3d):
    """Reference :class:`PatchIndividualConv3d`: one ``F.conv3d`` call per patch (slow).

    Same constructor, parameters and output; meant for tests and benchmarks only.
    """

    def _strain_forward(self, x: torch.Tensor, strain: str) -> torch.Tensor:
        """One strain's output map, looping over its patches."""
        p, k = self.patch_size, self.kernel_size
        out = x.new_zeros(x.shape[0], self.out_channels, *self.input_shape)
        bias = self._bias(strain)
        for index in range(self.n_patches(strain)):
            region = self.patch_region(strain, index)
            patch = x[(slice(None), slice(None), *region)]
            missing = [p - (r.stop - r.start) for r in region]
            patch = F.pad(patch, (0, missing[2], 0, missing[1], 0, missing[0]))
            result = F.conv3d(
                patch, self.weights[strain][index], None if bias is None else bias[index], padding=k // 2
            )
            out[(slice(None), slice(None), *region)] = result[
                :, :, : p - missing[0], : p - missing[1], : p - missing[2]
            ]
        return out


def copy_weights(src: PatchIndividualConv3d, dst: PatchIndividualConv3d) -> PatchIndividualConv3d:
    """Copy the filters of ``src`` into ``dst`` (same configuration), e.g. grouped -> loop; returns dst."""
    keys = ("in_channels", "out_channels", "input_shape", "patch_size", "overlap", "kernel_size")
    mismatch = {k: (getattr(src, k), getattr(dst, k)) for k in keys if getattr(src, k) != getattr(dst, k)}
    if mismatch or set(src.biases) != set(dst.biases):
        raise ValueError(f"PIF layers differ in configuration (src, dst): {mismatch or 'bias'}")
    dst.load_state_dict(src.state_dict())
    return dst


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

CONV_TYPES = (nn.Conv2d, nn.Conv3d, PatchIndividualConv3d)


def _dry_shape(module: nn.Module, channels: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Output shape (without batch) of ``module`` for a zero input ``(1, channels, *shape)``.

    Runs in eval mode without gradients so batch norms keep their statistics; restores the
    modules' training flags afterwards.
    """
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.zeros(1, channels, *shape))
    finally:
        for m, flag in flags:
            m.training = flag
    return tuple(out.shape[1:])


def _max_pool(kernel: int, shape: tuple[int, ...]) -> nn.Module:
    """Max-pooling of ``kernel`` (= stride), in ceil mode only if an axis is shorter than it."""
    ceil_mode = any(d < kernel for d in shape)
    pool = nn.MaxPool3d if len(shape) == 3 else nn.MaxPool2d
    return pool(kernel, stride=kernel, ceil_mode=ceil_mode)


class ConvNet(nn.Module):
    """``classifier(flatten(features(x)))`` with the helpers attribution and transfer need.

    ``features`` is an ``nn.Sequential`` of blocks (each an ``nn.Sequential``), ``classifier``
    an ``nn.Sequential`` whose first layer is sized by a dry forward pass. ``make_classifier``
    gets the flattened size and returns the classifier. ``frozen_blocks`` counts the blocks
    frozen by :func:`freeze_blocks`; ``train()`` keeps them in eval mode.
    """

    def __init__(
        self,
        name: str,
        input_shape: tuple[int, ...],
        features: nn.Sequential,
        make_classifier: Callable[[int], nn.Sequential],
    ) -> None:
        super().__init__()
        self.name = name
        self.input_shape = tuple(input_shape)
        self.features = features
        self.feature_shape = _dry_shape(features, 1, self.input_shape)
        self.n_features = math.prod(self.feature_shape)
        self.classifier = make_classifier(self.n_features)
        self.frozen_blocks = 0

    @property
    def last_conv(self) -> nn.Module:
        """The last convolution of ``features`` (Conv2d, Conv3d or PIF layer), for Grad-CAM."""
        convs = [m for m in self.features.modules() if isinstance(m, CONV_TYPES)]
        if not convs:
            raise ValueError(f"model {self.name!r} has no convolution layer")
        return convs[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, *input_shape) -> (B, n_classes)`` logits."""
        if x.dim() != len(self.input_shape) + 2 or tuple(x.shape[1:]) != (1, *self.input_shape):
            raise ValueError(
                f"model {self.name!r} expects input (B, 1, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(x.shape)}"
            )
        return self.classifier(torch.flatten(self.features(x), 1))

    def train(self, mode: bool = True) -> ConvNet:
        """Set training mode, keeping frozen blocks in eval mode (see :func:`set_frozen_eval`)."""
        super().train(mode)
        set_frozen_eval(self)
        return self


def set_frozen_eval(model: nn.Module) -> nn.Module:
    """Put the blocks frozen by :func:`freeze_blocks` in eval mode; returns ``model``.

    ``model.train()`` switches every submodule to training mode, which would let the batch norms
    of frozen blocks keep updating their running statistics (and use batch statistics) although
    their weights do not change. :class:`ConvNet` calls this helper from its ``train()``; a
    trainer working with other modules, or after setting submodule modes by hand, should call it
    after every ``model.train()``, i.e. at the start of each epoch.
    """
    for block in model.features[: getattr(model, "frozen_blocks", 0)]:
        block.eval()
    return model


def freeze_blocks(model: nn.Module, n: int) -> nn.Module:
    """Freeze the first ``n`` blocks of ``model.features`` for transfer learning; returns ``model``.

    Their parameters get ``requires_grad=False`` (so optimisers skip them) and their batch norms
    go to eval mode (:func:`set_frozen_eval`); the later feature blocks get ``requires_grad=True``
    and the model's current mode, so ``freeze_blocks(model, 0)`` unfreezes all blocks. Build the
    optimiser after freezing, or give it only parameters that require gradients.
    """
    blocks = getattr(model, "features", None)
    if not isinstance(blocks, nn.Sequential):
        raise ValueError(f"model has no nn.Sequential 'features', got {type(blocks).__name__}")
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(blocks):
        raise ValueError(f"n must be an integer in [0, {len(blocks)}], got {n!r}")
    for index, block in enumerate(blocks):
        for parameter in block.parameters():
            parameter.requires_grad_(index >= n)
        block.train(model.training and index >= n)
    model.frozen_blocks = n
    log.debug("froze %d of %d feature blocks", n, len(blocks))
    return set_frozen_eval(model)


def _conv_block(
    conv: nn.Module, channels: int, activation: nn.Module, pool: nn.Module | None, batchnorm: bool = True
) -> nn.Sequential:
    """``[conv, BatchNorm, activation, pool]`` as one block (BatchNorm/pool optional)."""
    dims = 2 if isinstance(conv, nn.Conv2d) else 3
    layers = [conv]
    if batchnorm:
        layers.append(nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm3d(channels))
    layers.append(activation)
    if pool is not None:
        layers.append(pool)
    return nn.Sequential(*layers)


def _boehle(
    input_shape: tuple[int, ...],
    n_classes: int,
    *,
    pif: bool,
    dropout: float,
    filters: Sequence[int],
    pools: Sequence[int],
    hidden: int,
    patch_size: int = 2,
    overlap: bool = True,
) -> ConvNet:
    """Böhle et al. (2019) network, optionally with a PIF layer as the last convolution."""
    dropout = _check_dropout(dropout)
    filters = _check_ints("filters", filters)
    pools = _check_ints("pools", pools, length=len(filters))
    hidden = _check_int("hidden", hidden)
    blocks: list[nn.Sequential] = []
    channels, shape = 1, input_shape
    for index, (width, kernel) in enumerate(zip(filters, pools)):
        if pif and index == len(filters) - 1:
            conv = PatchIndividualConv3d(channels, width, shape, patch_size=patch_size, overlap=overlap)
            out_channels = conv.n_output_channels
        else:
            conv, out_channels = nn.Conv3d(channels, width, 3, padding=1), width
        block = _conv_block(conv, out_channels, nn.ReLU(), _max_pool(kernel, shape))
        channels, *shape = _dry_shape(block, channels, shape)
        shape = tuple(shape)
        blocks.append(block)

    def classifier(flat: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Linear(flat, hidden), nn.ReLU(), nn.Dropout(p=dropout), nn.Linear(hidden, n_classes)
        )

    return ConvNet("boehle3d_pif" if pif else "boehle3d", input_shape, nn.Sequential(*blocks), classifier)


def boehle3d(
    input_shape: tuple[int, ...],
    n_classes: int = 2,
    *,
    dropout: float = 0.4,
    filters: Sequence[int] = (8, 16, 32, 64),
    pools: Sequence[int] = (2, 3, 2, 3),
    hidden: int = 128,
) -> ConvNet:
    """Böhle et al. (2019): 4 x [Conv3d, BN, ReLU, MaxPool 2/3/2/3], FC 128, dropout 0.4."""
    return _boehle(input_shape, n_classes, pif=False, dropout=dropout, filters=filters, pools=pools, hidden=hidden)


def boehle3d_pif(
    input_shape: tuple[int, ...],
    n_classes: int = 2,
    *,
    dropout: float = 0.4,
    filters: Sequence[int] = (8, 16, 32, 64),
    pools: Sequence[int] = (2, 3, 2, 3),
    hidden: int = 128,
    patch_size: int = 2,
    overlap: bool = True,
) -> ConvNet:
    """:func:`boehle3d` with a :class:`PatchIndividualConv3d` as the last block's convolution."""
    return _boehle(
        input_shape, n_classes, pif=True, dropout=dropout, filters=filters, pools=pools, hidden=hidden,
        patch_size=patch_size, overlap=overlap,
    )


def elu64(
    input_shape: tuple[int, ...],
    n_classes: int = 2,
    *,
    dropout: float = 0.4,
    filters: int = 64,
    n_blocks: int = 4,
) -> ConvNet:
    """Eitel et al. (2019) MS network: n_blocks x [Conv3d 64, BN, ELU, MaxPool 2 ceil], Dropout, Linear."""
    dropout = _check_dropout(dropout)
    filters = _check_int("filters", filters)
    n_blocks = _check_int("n_blocks", n_blocks)
    blocks = []
    channels = 1
    for _ in range(n_blocks):
        conv = nn.Conv3d(channels, filters, 3, padding=1)
        blocks.append(_conv_block(conv, filters, nn.ELU(), nn.MaxPool3d(2, stride=2, ceil_mode=True)))
        channels = filters

    def classifier(flat: int) -> nn.Sequential:
        return nn.Sequential(nn.Dropout(p=dropout), nn.Linear(flat, n_classes))

    return ConvNet("elu64", input_shape, nn.Sequential(*blocks), classifier)


def caffenet2d(
    input_shape: tuple[int, ...],
    n_classes: int = 2,
    *,
    dropout: float = 0.5,
    filters: Sequence[int] = (32, 64, 96, 96, 64),
    hidden: Sequence[int] = (256, 128),
    batchnorm: bool = True,
) -> ConvNet:
    """CaffeNet-like 2D net: 5 x [Conv2d 3x3, BN, ReLU], pools after convs 1, 2, 5; FC 256-128-C."""
    dropout = _check_dropout(dropout)
    filters = _check_ints("filters", filters, length=5)
    hidden = _check_ints("hidden", hidden)
    if not isinstance(batchnorm, bool):
        raise ValueError(f"batchnorm must be True or False, got {batchnorm!r}")
    blocks = []
    channels, shape = 1, input_shape
    for index, width in enumerate(filters):
        conv = nn.Conv2d(channels, width, 3, padding=1)
        pool = _max_pool(2, shape) if index in (0, 1, 4) else None
        block = _conv_block(conv, width, nn.ReLU(), pool, batchnorm=batchnorm)
        channels, *rest = _dry_shape(block, channels, shape)
        shape = tuple(rest)
        blocks.append(block)

    def classifier(flat: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(flat, width), nn.ReLU(), nn.Dropout(p=dropout)]
            flat = width
        return nn.Sequential(*layers, nn.Linear(flat, n_classes))

    return ConvNet("caffenet2d", input_shape, nn.Sequential(*blocks), classifier)


BUILDERS: dict[str, Callable[..., ConvNet]] = {
    "boehle3d": boehle3d,
    "boehle3d_pif": boehle3d_pif,
    "elu64": elu64,
    "caffenet2d": caffenet2d,
}

SPATIAL_DIMS = {"boehle3d": 3, "boehle3d_pif": 3, "elu64": 3, "caffenet2d": 2}


def model_options(name: str) -> dict[str, object]:
    """The options model ``name`` accepts, with their defaults."""
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; valid names are {', '.join(MODEL_NAMES)}")
    parameters = inspect.signature(BUILDERS[name]).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def build_model(name: str, input_shape: tuple[int, ...], n_classes: int = 2, **options: object) -> ConvNet:
    """Model ``name`` (one of ``MODEL_NAMES``) for inputs ``(B, 1, *input_shape)``.

    ``input_shape`` is the spatial shape (3 ints for the 3D models, 2 for ``caffenet2d``);
    ``options`` are the model's keyword options (:func:`model_options`). Unknown names, options
    or bad values are ``ValueError``.
    """
    allowed = model_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for model {name!r}; valid options are {sorted(allowed)}")
    dims = SPATIAL_DIMS[name]
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence) or len(input_shape) != dims:
        raise ValueError(f"model {name!r} needs an input_shape of {dims} integers, got {input_shape!r}")
    input_shape = _check_ints("input_shape", input_shape, length=dims)
    n_classes = _check_int("n_classes", n_classes)
    model = BUILDERS[name](input_shape, n_classes, **options)
    n_parameters = sum(p.numel() for p in model.parameters())
    log.debug(
        "built %s for input %s: feature map %s, %d parameters", name, input_shape, model.feature_shape, n_parameters
    )
    return model

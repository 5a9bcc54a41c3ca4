"""Attribution maps for the CNNs of :mod:`mrixai.learn.networks`, computed by :func:`attribute`.

Every method explains the logit of one class per input (``target``; by default the predicted
class) and returns a map with the input's shape ``(B, 1, *spatial)``. The model is deep-copied
and put in eval mode (on the input's device and dtype), so the caller's model is never modified.
Methods (``METHODS``; options and defaults in :func:`method_options`): ``lrp_epsilon``,
``lrp_alphabeta`` (``beta``, ``first_rule``, ``dense_rule``, ``low``, ``high``; by default the
composite of Kohlbrenner et al. 2020: alpha-beta convolutions, epsilon dense layers, w^2 first
layer), ``guided_backprop``, ``gradient_x_input``, ``integrated_gradients``, ``occlusion``
(batched; :func:`occlusion` also returns its number of forward passes) and ``gradcam`` (on
``model.last_conv``).

LRP runs on a copy whose batch norms are folded into the preceding convolutions
(:func:`fold_batchnorm`) and whose patch-individual-filter layer is replaced by the equivalent
:class:`GroupedPatchConv3d`. :func:`spearman_maps` is the rank correlation of two maps, for
model-randomisation checks (Adebayo et al. 2018). The rules, their conservation properties and
the choice of the default composite are explained in docs/explanations.md.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import GuidedBackprop, IntegratedGradients
from scipy import stats
from torch import nn
from zennit.attribution import Gradient
from zennit.composites import LayerMapComposite, SpecialFirstLayerMapComposite, layer_map_base
from zennit.core import Composite
from zennit.rules import AlphaBeta, Epsilon, Flat, WSquare, ZBox
from zennit.types import Convolution
from zennit.types import Linear as LinearLayers

from mrixai.learn.networks import PatchIndividualConv3d, assemble_patches, cut_patches

log = logging.getLogger(__name__)

METHODS = (
    "lrp_epsilon",
    "lrp_alphabeta",
    "guided_backprop",
    "gradient_x_input",
    "integrated_gradients",
    "occlusion",
    "gradcam",
)

BETAS = (0.0, 0.25, 0.5, 0.75, 1.0)
FIRST_RULES = ("wsquare", "zbox", "flat", "alphabeta")
DENSE_RULES = ("epsilon", "alphabeta")
DENSE_EPSILON = 1e-6
LRP_STABILIZER = 1e-6

METHOD_DEFAULTS: dict[str, dict[str, object]] = {
    "lrp_epsilon": {"epsilon": 1e-6},
    "lrp_alphabeta": {"beta": 0.0, "first_rule": "wsquare", "dense_rule": "epsilon", "low": None, "high": None},
    "guided_backprop": {},
    "gradient_x_input": {},
    "integrated_gradients": {"n_steps": 50, "batch_size": 16},
    "occlusion": {"patch": 8, "stride": 8, "batch_size": 16, "fill": 0.0},
    "gradcam": {},
}

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_INTERPOLATION = {1: "linear", 2: "bilinear", 3: "trilinear"}


# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    """True for ints and floats that are not bools."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_positive_float(method: str, name: str, value: object) -> float:
    """``value`` as a finite float > 0, else ``ValueError`` naming the option."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"option {name!r} of {method!r} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_positive_int(method: str, name: str, value: object) -> int:
    """``value`` as an int >= 1, else ``ValueError`` naming the option."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"option {name!r} of {method!r} must be an integer >= 1, got {value!r}")
    return value


def _check_int_or_ints(method: str, name: str, value: object) -> int | tuple[int, ...]:
    """An int >= 1 or a non-empty sequence of them (one per spatial axis), else ``ValueError``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _check_positive_int(method, name, value)
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and len(value) > 0:
        if all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
            return tuple(value)
    raise ValueError(f"option {name!r} of {method!r} must be an integer >= 1 or a sequence of them, got {value!r}")


def _check_optional_float(method: str, name: str, value: object) -> float | None:
    """None or a finite float, else ``ValueError`` naming the option."""
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(f"option {name!r} of {method!r} must be None or a finite number, got {value!r}")
    return float(value)


def _check_option(method: str, name: str, value: object) -> object:
    """One validated option value of ``method``."""
    if name in ("epsilon",):
        return _check_positive_float(method, name, value)
    if name in ("n_steps", "batch_size"):
        return _check_positive_int(method, name, value)
    if name in ("patch", "stride"):
        return _check_int_or_ints(method, name, value)
    if name in ("low", "high"):
        return _check_optional_float(method, name, value)
    if name == "fill":
        if not _is_number(value) or not math.isfinite(value):
            raise ValueError(f"option 'fill' of {method!r} must be a finite number, got {value!r}")
        return float(value)
    if name == "beta":
        if not _is_number(value) or float(value) not in BETAS:
            raise ValueError(f"option 'beta' of {method!r} must be one of {BETAS}, got {value!r}")
        return float(value)
    if name == "first_rule":
        if value not in FIRST_RULES:
            raise ValueError(f"option 'first_rule' of {method!r} must be one of {FIRST_RULES}, got {value!r}")
        return value
    if name == "dense_rule":
        if value not in DENSE_RULES:
            raise ValueError(f"option 'dense_rule' of {method!r} must be one of {DENSE_RULES}, got {value!r}")
        return value
    raise ValueError(f"no check for option {name!r} of {method!r}")  # pragma: no cover


def method_options(method: str, **options: object) -> dict[str, object]:
    """All options of ``method``: the defaults updated with validated ``options``.

    Unknown methods, unknown options and bad values are ``ValueError`` naming them.
    ``method_options(method)`` gives the defaults.
    """
    if method not in METHOD_DEFAULTS:
        raise ValueError(f"unknown attribution method {method!r}; valid methods are {', '.join(METHODS)}")
    defaults = METHOD_DEFAULTS[method]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for method {method!r}; valid options are {sorted(defaults) or 'none'}"
        )
    checked = dict(defaults)
    checked.update({name: _check_option(method, name, value) for name, value in options.items()})
    if checked.get("low") is not None and checked.get("high") is not None and checked["low"] >= checked["high"]:
        raise ValueError(f"option 'low' of {method!r} must be below 'high', got {checked['low']} >= {checked['high']}")
    return checked


# ---------------------------------------------------------------------------------------------
# Batch-norm folding
# ---------------------------------------------------------------------------------------------


def _bn_scale_shift(bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``(scale, shift)`` with ``bn(z) == scale * z + shift`` in eval mode (float64)."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"cannot fold {bn}: it keeps no running statistics (track_running_stats=False)")
    scale = 1.0 / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.detach().double()
    shift = -bn.running_mean.detach().double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.detach().double()
    return scale, shift


def _fold_conv(conv: nn.Module, bn: nn.Module) -> None:
    """Fold ``bn`` into the weight and bias of the standard convolution ``conv`` (in place)."""
    if bn.num_features != conv.out_channels:
        raise ValueError(f"cannot fold {bn} into {conv}: {bn.num_features} != {conv.out_channels} channels")
    scale, shift = _bn_scale_shift(bn)
    weight = conv.weight.detach()
    bias = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(shift)
    new_weight = weight.double() * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    conv.weight = nn.Parameter(new_weight.to(weight.dtype), requires_grad=conv.weight.requires_grad)
    conv.bias = nn.Parameter((bias * scale + shift).to(weight.dtype), requires_grad=conv.weight.requires_grad)


class GroupedPatchConv3d(nn.Module):
    """A :class:`PatchIndividualConv3d` as one ``nn.Conv3d`` (``groups`` = patches) per strain.

    Computes the same map as the PIF layer it is built from, optionally followed by the batch
    norm ``batchnorm`` (eval mode), whose channel scale is folded into each strain's output
    channels (the PIF output concatenates the strains' ``out_channels`` channels, main strain
    first) and whose shift goes into the biases. Voxels that no patch of the shifted strain
    covers (below its offset and past its last patch) are zero in the PIF output and so
    ``shift`` after the batch norm; that constant is added by the buffer ``fill_map`` (zero
    without a batch norm).

    The patch rearrangement around each grouped convolution is fixed copying / padding /
    cropping, so rules that hook standard convolutions (LRP) see every per-patch filter, and
    gradients pass the rearrangement unchanged. The filters of patch ``n`` of a strain are the
    output channels ``n * out_channels ...`` of that strain's convolution in ``convs``.
    """

    def __init__(self, pif: PatchIndividualConv3d, batchnorm: nn.Module | None = None) -> None:
        super().__init__()
        if not isinstance(pif, PatchIndividualConv3d):
            raise ValueError(f"expected a PatchIndividualConv3d, got {type(pif).__name__}")
        self.in_channels = pif.in_channels
        self.out_channels = pif.out_channels
        self.input_shape = pif.input_shape
        self.patch_size = pif.patch_size
        self.kernel_size = pif.kernel_size
        self.strains = tuple(pif.strains)
        self.n_output_channels = pif.n_output_channels
        self.offsets = {strain: pif.offset(strain) for strain in self.strains}
        self.grids = {strain: pif.grid(strain) for strain in self.strains}
        weight0 = pif.weights[self.strains[0]]
        device = weight0.device
        scale = torch.ones(self.n_output_channels, dtype=torch.float64, device=device)
        shift = torch.zeros(self.n_output_channels, dtype=torch.float64, device=device)
        if batchnorm is not None:
            if batchnorm.num_features != self.n_output_channels:
                raise ValueError(
                    f"cannot fold {batchnorm} into the PIF layer: {batchnorm.num_features} != "
                    f"{self.n_output_channels} channels"
                )
            scale, shift = _bn_scale_shift(batchnorm)
        has_bias = batchnorm is not None or len(pif.biases) > 0
        self.convs = nn.ModuleDict()
        for index, strain in enumerate(self.strains):
            self.convs[strain] = self._strain_conv(pif, strain, index, scale, shift, has_bias)
        fill_map = torch.zeros(1, self.n_output_channels, *self.input_shape, dtype=torch.float64, device=device)
        for index, strain in enumerate(self.strains):
            start, grid = self.offsets[strain], self.grids[strain]
            channels = slice(index * self.out_channels, (index + 1) * self.out_channels)
            covered = torch.zeros(self.input_shape, dtype=torch.bool, device=device)
            covered[tuple(slice(start, start + g * self.patch_size) for g in grid)] = True
            fill_map[0, channels][:, ~covered] = shift[channels, None]
        self.register_buffer("fill_map", fill_map.to(dtype=weight0.dtype))

    def _strain_conv(
        self,
        pif: PatchIndividualConv3d,
        strain: str,
        index: int,
        scale: torch.Tensor,
        shift: torch.Tensor,
        has_bias: bool,
    ) -> nn.Conv3d:
        """The grouped convolution of ``strain`` with the batch-norm scale and shift folded in."""
        n, o, c, k = pif.n_patches(strain), self.out_channels, self.in_channels, self.kernel_size
        weight = pif.weights[strain].detach()
        channels = slice(index * o, (index + 1) * o)
        s, t = scale[channels], shift[channels]
        conv = nn.Conv3d(n * c, n * o, k, padding=k // 2, groups=n, bias=has_bias)
        folded = weight.double() * s.reshape(1, o, 1, 1, 1, 1)
        conv.weight = nn.Parameter(folded.reshape(n * o, c, k, k, k).to(weight.dtype))
        if has_bias:
            if strain in pif.biases:
                bias = pif.biases[strain].detach().double()
            else:
                bias = torch.zeros(n, o, dtype=torch.float64, device=weight.device)
            conv.bias = nn.Parameter((bias * s + t).reshape(n * o).to(weight.dtype))
        return conv.to(weight.device)

    def _strain_forward(self, x: torch.Tensor, strain: str) -> torch.Tensor:
        """One strain's ``(B, out_channels, *input_shape)`` map: patches -> grouped conv -> map."""
        start, p = self.offsets[strain], self.patch_size
        grid = self.grids[strain]
        out = self.convs[strain](cut_patches(x, start, p, grid))
        return assemble_patches(out, start, p, grid, self.input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, *input_shape) -> (B, n_output_channels, *input_shape)``."""
        if x.dim() != 5 or x.shape[1] != self.in_channels or tuple(x.shape[2:]) != self.input_shape:
            raise ValueError(
                f"expected input (B, {self.in_channels}, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(x.shape)}"
            )
        out = torch.cat([self._strain_forward(x, strain) for strain in self.strains], dim=1)
        return out + self.fill_map


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode deep copy of ``model`` with batch norms folded into the preceding convolutions.

    Every ``BatchNorm{1,2,3}d`` that directly follows a ``Conv{1,2,3}d`` in the same
    ``nn.Sequential`` is folded into that convolution's weight and bias (a bias is added where
    the convolution had none) and replaced by ``nn.Identity``; a :class:`PatchIndividualConv3d`
    followed by a batch norm becomes a :class:`GroupedPatchConv3d` with the batch norm folded in.
    The copy computes the same function as ``model`` in eval mode (up to rounding; the folding
    is done in float64). Other batch norms are left alone. ``model`` is not modified.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    folded = copy.deepcopy(model).eval()
    n_folded = 0
    for block in [m for m in folded.modules() if isinstance(m, nn.Sequential)]:
        names = list(block._modules)
        for first, second in zip(names, names[1:]):
            layer, bn = block._modules[first], block._modules[second]
            if not isinstance(bn, _BATCHNORMS):
                continue
            if isinstance(layer, PatchIndividualConv3d):
                setattr(block, first, GroupedPatchConv3d(layer, bn))
            elif isinstance(layer, _CONVS):
                _fold_conv(layer, bn)
            else:
                continue
            setattr(block, second, nn.Identity())
            n_folded += 1
    log.debug("folded %d batch norm(s) into convolutions", n_folded)
    return folded


def _replace_pif(model: nn.Module) -> int:
    """Replace every remaining PIF layer of ``model`` by a :class:`GroupedPatchConv3d` (in place)."""
    n_replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, PatchIndividualConv3d):
                setattr(parent, name, GroupedPatchConv3d(child))
                n_replaced += 1
    return n_replaced


def lrp_model(model: nn.Module) -> nn.Module:
    """The eval-mode copy of ``model`` that LRP runs on: batch norms folded, PIF layers grouped."""
    work = fold_batchnorm(model)
    _replace_pif(work)
    left = [name for name, m in work.named_modules() if isinstance(m, _BATCHNORMS)]
    if left:
        log.warning("batch norm(s) %s follow no convolution and were not folded; LRP passes relevance through", left)
    return work


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _check_input(x: object) -> torch.Tensor:
    """``x`` as a detached floating tensor ``(B, C, *spatial)``, else ``ValueError``."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a floating tensor (B, C, *spatial), got {shape}")
    return x.detach()


def _working_copy(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """An eval-mode deep copy of ``model`` on the device and in the dtype of ``x``."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return copy.deepcopy(model).eval().to(device=x.device, dtype=x.dtype)


def _targets(logits: torch.Tensor, target: object) -> torch.Tensor:
    """The class index per input: the predicted class (``target=None``), one int or one per input."""
    batch, n_classes = logits.shape
    if target is None:
        return logits.argmax(dim=1)
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        targets = torch.full((batch,), int(target), dtype=torch.long)
    elif isinstance(target, (Sequence, torch.Tensor, np.ndarray)) and not isinstance(target, (str, bytes)):
        targets = torch.as_tensor(np.asarray(target)).reshape(-1)
        if targets.numel() != batch or targets.is_floating_point() or targets.dtype == torch.bool:
            raise ValueError(f"target must be None, an int or {batch} ints (one per input), got {target!r}")
        targets = targets.long()
    else:
        raise ValueError(f"target must be None, an int or {batch} ints (one per input), got {target!r}")
    if targets.min() < 0 or targets.max() >= n_classes:
        raise ValueError(f"target must be a class index in [0, {n_classes}), got {target!r}")
    return targets.to(logits.device)


def _target_scores(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The logit of each input's target class, ``(B,)``."""
    return logits.gather(1, targets[:, None])[:, 0]


def _input_gradient(work: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Gradient of the target logits with respect to the input (inputs are independent in eval mode)."""
    inputs = x.clone().requires_grad_(True)
    with torch.enable_grad():
        score = _target_scores(work(inputs), targets).sum()
        (gradient,) = torch.autograd.grad(score, inputs)
    return gradient


# ---------------------------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------------------------


def lrp_composite(method: str, x: torch.Tensor, **options: object) -> Composite:
    """The zennit composite of the LRP ``method`` (``lrp_epsilon`` / ``lrp_alphabeta``) for input ``x``."""
    if method not in ("lrp_epsilon", "lrp_alphabeta"):
        raise ValueError(f"{method!r} is not an LRP method; use 'lrp_epsilon' or 'lrp_alphabeta'")
    opts = method_options(method, **options)
    base = layer_map_base(stabilizer=LRP_STABILIZER)
    if method == "lrp_epsilon":
        return LayerMapComposite(layer_map=base + [(LinearLayers, Epsilon(epsilon=opts["epsilon"]))])
    beta = opts["beta"]
    alphabeta = AlphaBeta(alpha=1.0 + beta, beta=beta, stabilizer=LRP_STABILIZER)
    if opts["dense_rule"] == "epsilon":
        # Convolution first: zennit applies the first matching entry, and nn.Linear is no Convolution.
        layer_map = base + [(Convolution, alphabeta), (nn.Linear, Epsilon(epsilon=DENSE_EPSILON))]
    else:
        layer_map = base + [(LinearLayers, alphabeta)]
    if opts["first_rule"] == "alphabeta":
        return LayerMapComposite(layer_map=layer_map)
    if opts["first_rule"] == "wsquare":
        first = WSquare(stabilizer=LRP_STABILIZER)
    elif opts["first_rule"] == "flat":
        first = Flat(stabilizer=LRP_STABILIZER)
    else:
        low = float(x.min()) if opts["low"] is None else opts["low"]
        high = float(x.max()) if opts["high"] is None else opts["high"]
        if float(x.min()) < low or float(x.max()) > high:
            raise ValueError(
                f"input values [{float(x.min())}, {float(x.max())}] lie outside the z^B box [{low}, {high}]"
            )
        first = ZBox(low=low, high=high, stabilizer=LRP_STABILIZER)
    return SpecialFirstLayerMapComposite(layer_map=layer_map, first_map=[(LinearLayers, first)])


def _lrp(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, method: str, opts: dict) -> torch.Tensor:
    """LRP relevance of the target logits (initial relevance = the logit)."""
    work = lrp_model(model).to(device=x.device, dtype=x.dtype)
    composite = lrp_composite(method, x, **opts)

    def initial_relevance(output: torch.Tensor) -> torch.Tensor:
        mask = F.one_hot(targets, output.shape[1]).to(output.dtype)
        return (output * mask).detach()

    with torch.enable_grad():
        _, relevance = Gradient(model=work, composite=composite, attr_output=initial_relevance)(x.clone())
    return relevance


def _gradcam(work: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Grad-CAM on ``work.last_conv``, upsampled to the input's spatial size."""
    try:
        layer = work.last_conv
    except AttributeError:
        layer = None
    if not isinstance(layer, nn.Module):
        raise ValueError(f"gradcam needs a model with a 'last_conv' module, {type(work).__name__} has none")
    stored: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda module, inputs, output: stored.__setitem__("maps", output))
    try:
        inputs = x.clone().requires_grad_(True)
        with torch.enable_grad():
            score = _target_scores(work(inputs), targets).sum()
            maps = stored["maps"]
            (gradient,) = torch.autograd.grad(score, maps)
    finally:
        handle.remove()
    spatial = tuple(range(2, maps.dim()))
    weights = gradient.mean(dim=spatial, keepdim=True)
    cam = F.relu((weights * maps).sum(dim=1, keepdim=True)).detach()
    if len(spatial) not in _INTERPOLATION:
        raise ValueError(f"gradcam supports 1 to 3 spatial axes, got maps of shape {tuple(maps.shape)}")
    return F.interpolate(cam, size=tuple(x.shape[2:]), mode=_INTERPOLATION[len(spatial)], align_corners=False)


def occlusion_starts(size: int, patch: int, stride: int) -> list[int]:
    """Start voxels of occlusion cubes along an axis of ``size``: every ``stride``, plus one flush at the end."""
    if patch > size:
        raise ValueError(f"occlusion patch {patch} is larger than the axis length {size}")
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] + patch < size:
        starts.append(size - patch)
    return starts


def _per_axis(name: str, value: int | tuple[int, ...], n_axes: int) -> tuple[int, ...]:
    """An int or per-axis tuple as one int per spatial axis, else ``ValueError``."""
    if isinstance(value, int):
        return (value,) * n_axes
    if len(value) != n_axes:
        raise ValueError(f"option {name!r} of 'occlusion' needs {n_axes} values (one per axis), got {value!r}")
    return tuple(value)


def _occlusion(
    work: nn.Module, x: torch.Tensor, targets: torch.Tensor, reference: torch.Tensor, opts: dict
) -> tuple[torch.Tensor, int]:
    """Batched occlusion map and the number of forward passes of occluded copies."""
    spatial = tuple(x.shape[2:])
    patch = _per_axis("patch", opts["patch"], len(spatial))
    stride = _per_axis("stride", opts["stride"], len(spatial))
    axes = [occlusion_starts(size, p, s) for size, p, s in zip(spatial, patch, stride)]
    regions = [
        tuple(slice(axes[axis][i], axes[axis][i] + patch[axis]) for axis, i in enumerate(index))
        for index in np.ndindex(*map(len, axes))
    ]
    jobs = [(sample, region) for sample in range(x.shape[0]) for region in regions]
    batch_size = opts["batch_size"]
    total = torch.zeros_like(x)
    counts = torch.zeros((1, 1, *spatial), dtype=x.dtype, device=x.device)
    for region in regions:
        counts[(slice(None), slice(None), *region)] += 1
    n_forward = 0
    with torch.no_grad():
        for begin in range(0, len(jobs), batch_size):
            chunk = jobs[begin : begin + batch_size]
            samples = torch.tensor([sample for sample, _ in chunk], device=x.device)
            occluded = x[samples].clone()
            for row, (_, region) in enumerate(chunk):
                occluded[(row, slice(None), *region)] = opts["fill"]
            drops = reference[samples] - _target_scores(work(occluded), targets[samples])
            n_forward += 1
            for row, (sample, region) in enumerate(chunk):
                total[(sample, slice(None), *region)] += drops[row]
    log.info(
        "occlusion: %d positions x %d input(s) in %d forward passes of up to %d copies (patch %s, stride %s)",
        len(regions),
        x.shape[0],
        n_forward,
        batch_size,
        patch,
        stride,
    )
    return total / counts, n_forward


def occlusion(model: nn.Module, x: torch.Tensor, target: object = None, **options: object) -> tuple[torch.Tensor, int]:
    """Occlusion map ``(B, C, *spatial)`` of the target logits and the number of occluded forward passes.

    The occluded copies of all inputs go through the network ``batch_size`` at a time, so the
    count is ``ceil(B * n_positions / batch_size)``; one more forward pass of the unoccluded
    inputs gives the reference logits and the predicted classes. See the module docstring.
    """
    opts = method_options("occlusion", **options)
    x = _check_input(x)
    work = _working_copy(model, x)
    with torch.no_grad():
        logits = work(x)
    targets = _targets(logits, target)
    return _occlusion(work, x, targets, _target_scores(logits, targets), opts)


def attribute(model: nn.Module, x: torch.Tensor, method: str, target: object = None, **options: object) -> torch.Tensor:
    """Attribution map of ``method`` (one of ``METHODS``) for inputs ``x`` ``(B, 1, *spatial)``.

    ``target`` is the class explained per input: None (the predicted class), an int, or one int
    per input; the explained quantity is that class's logit. ``options`` are the method's
    options (:func:`method_options`). Returns a detached tensor of the input's shape, dtype and
    device. ``model`` is not modified (the methods work on eval-mode copies).
    """
    opts = method_options(method, **options)
    x = _check_input(x)
    work = _working_copy(model, x)
    with torch.no_grad():
        logits = work(x)
    targets = _targets(logits, target)
    log.info(
        "%s attribution of %d input(s) %s for classes %s", method, x.shape[0], tuple(x.shape[1:]), targets.tolist()
    )
    if method in ("lrp_epsilon", "lrp_alphabeta"):
        result = _lrp(work, x, targets, method, opts)
    elif method == "guided_backprop":
        with torch.enable_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU", category=UserWarning)
            result = GuidedBackprop(work).attribute(x.clone().requires_grad_(True), target=targets)
    elif method == "gradient_x_input":
        result = _input_gradient(work, x, targets) * x
    elif method == "integrated_gradients":
        with torch.enable_grad():
            result = IntegratedGradients(work).attribute(
                x.clone().requires_grad_(True),
                baselines=torch.zeros_like(x),
                target=targets,
                n_steps=opts["n_steps"],
                internal_batch_size=opts["batch_size"],
            )
    elif method == "occlusion":
        result, _ = _occlusion(work, x, targets, _target_scores(logits, targets), opts)
    else:
        result = _gradcam(work, x, targets)
    if tuple(result.shape) != tuple(x.shape):
        raise RuntimeError(f"{method} gave a map of shape {tuple(result.shape)} for input {tuple(x.shape)}")
    return result.detach()


# ---------------------------------------------------------------------------------------------
# Sanity checks
# ---------------------------------------------------------------------------------------------


def spearman_maps(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Spearman rank correlation of two attribution maps of the same shape, over all voxels.

    For model-randomisation checks: maps of a trained and a re-initialised model should
    correlate weakly. A constant map has no ranks to correlate; the result is then NaN (logged).
    """
    arrays = []
    for name, value in (("a", a), ("b", b)):
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if not isinstance(value, np.ndarray) or value.size < 2:
            raise ValueError(f"map {name} must be an array or tensor with at least 2 voxels, got {value!r:.80}")
        arrays.append(value.astype(np.float64).ravel())
    if tuple(np.shape(a)) != tuple(np.shape(b)):
        raise ValueError(f"maps must have the same shape, got {tuple(np.shape(a))} and {tuple(np.shape(b))}")
    if any(np.ptp(array) == 0 for array in arrays):
        log.warning("spearman_maps: a constant map has no rank correlation; returning NaN")
        return float("nan")
    return float(stats.spearmanr(arrays[0], arrays[1]).statistic)

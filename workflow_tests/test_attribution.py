"""Attribution methods: batch-norm folding, LRP conservation, gradients, Grad-CAM, occlusion."""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mrixai.explain.attribution import (
    METHODS,
    GroupedPatchConv3d,
    attribute,
    fold_batchnorm,
    lrp_model,
    method_options,
    occlusion,
    occlusion_starts,
    spearman_maps,
)
from mrixai.learn.networks import PatchIndividualConv3d, build_model

SHAPE = (24, 28, 24)
# The PIF model needs a last-block feature map that holds a shifted patch on every axis: 48^3 gives
# 4x4x4, whose shifted strain (one patch at voxels 1..2) leaves voxel 3 uncovered at the high end.
PIF_SHAPE = (48, 48, 48)


def _shape(name: str) -> tuple[int, ...]:
    return PIF_SHAPE if name == "boehle3d_pif" else SHAPE


def _with_running_stats(name: str, seed: int = 0) -> nn.Module:
    """Model ``name`` whose batch norms have non-trivial running statistics and affine parameters."""
    torch.manual_seed(seed)
    model = build_model(name, _shape(name))
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 1, *_shape(name)) * 2 + 1)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm3d):
                module.weight.uniform_(0.5, 2.0)
                module.bias.uniform_(-1.0, 1.0)
    return model.eval()


def _zero_biases(model: nn.Module) -> nn.Module:
    """Zero every bias (and the PIF fill constants) of ``model`` in place."""
    with torch.no_grad():
        for module in model.modules():
            for name, parameter in module.named_parameters(recurse=False):
                if name == "bias":
                    parameter.zero_()
            if isinstance(module, GroupedPatchConv3d):
                module.fill_map.zero_()
    return model


# ---------------------------------------------------------------------------------------------
# Batch-norm folding
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["boehle3d", "boehle3d_pif"])
def test_fold_batchnorm_equals_eval_model(name):
    model = _with_running_stats(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 1, *_shape(name))
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm3d) for m in folded.modules())
    assert sum(isinstance(m, nn.Identity) for m in folded.modules()) == 4
    if name == "boehle3d_pif":
        assert isinstance(folded.features[3][0], GroupedPatchConv3d)
        # the shifted strain's uncovered voxels hold the batch-norm shift
        assert folded.features[3][0].fill_map.abs().sum() > 0
    with torch.no_grad():
        expected, got = model(x), folded(x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())
    # the original is untouched
    assert any(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_grouped_patch_conv_equals_pif_layer():
    torch.manual_seed(1)
    pif = PatchIndividualConv3d(3, 4, (5, 6, 4), patch_size=2, overlap=True)
    grouped = GroupedPatchConv3d(pif)
    x = torch.randn(2, 3, 5, 6, 4)
    with torch.no_grad():
        assert torch.allclose(grouped(x), pif(x), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# LRP
# ---------------------------------------------------------------------------------------------


def _bias_free_lrp_net(name: str) -> nn.Module:
    """A float64 LRP-ready (folded) model without biases."""
    return _zero_biases(lrp_model(_with_running_stats(name))).double()


def _block_relevance_sums(model: nn.Module) -> tuple[list, list]:
    """Register hooks that record the relevance (the backward signal) at every feature block's output."""
    sums: list[torch.Tensor] = []

    def record(module, inputs, output):
        if output.requires_grad:  # not the no-grad pass that finds the predicted class
            output.register_hook(lambda grad: sums.append((grad * 1.0).sum(dim=tuple(range(1, grad.dim())))))

    handles = [block.register_forward_hook(record) for block in model.features]
    return sums, handles


@pytest.mark.parametrize(
    "name, method, options, rtol",
    [
        ("boehle3d", "lrp_epsilon", {"epsilon": 1e-9}, 1e-5),
        ("boehle3d", "lrp_alphabeta", {"beta": 0.0}, 1e-3),
        ("boehle3d", "lrp_alphabeta", {"beta": 1.0}, 1e-3),
        ("boehle3d", "lrp_alphabeta", {"beta": 1.0, "first_rule": "alphabeta"}, 1e-3),
        ("boehle3d", "lrp_alphabeta", {"beta": 0.5, "first_rule": "flat"}, 1e-3),
        ("boehle3d", "lrp_alphabeta", {"beta": 0.0, "first_rule": "zbox", "dense_rule": "alphabeta"}, 1e-3),
        ("boehle3d", "lrp_alphabeta", {"beta": 1.0, "dense_rule": "alphabeta"}, 1e-3),
        ("elu64", "lrp_alphabeta", {"beta": 0.0}, 1e-3),
        ("boehle3d_pif", "lrp_epsilon", {"epsilon": 1e-9}, 1e-5),
        ("boehle3d_pif", "lrp_alphabeta", {"beta": 0.0}, 1e-3),
    ],
)
def test_lrp_conserves_relevance_without_biases(name, method, options, rtol):
    """Input relevance (and the relevance at every block output) sums to the explained logit.

    Epsilon 1e-9 in float64 holds to 1e-5 relative; alpha-beta to 1e-3 (zennit's stabiliser
    1e-6 in the z+ / z- denominators costs ~1e-4 of the relevance of weakly activated neurons).
    """
    model = _bias_free_lrp_net(name)
    x = torch.rand(1, 1, *_shape(name), dtype=torch.float64) + 0.1
    with torch.no_grad():
        logits = model(x)
    target = logits.argmax(dim=1)
    explained = logits.gather(1, target[:, None])[:, 0]
    assert explained.abs().min() > 1e-6
    sums, handles = _block_relevance_sums(model)
    try:
        relevance = attribute(model, x, method, **options)
    finally:
        for handle in handles:
            handle.remove()
    assert relevance.shape == x.shape and relevance.dtype == torch.float64
    total = relevance.sum(dim=(1, 2, 3, 4))
    assert torch.allclose(total, explained, rtol=rtol, atol=0), (total, explained)
    assert len(sums) == 4  # one per feature block: conservation holds layer by layer
    for block_sum in sums:
        assert torch.allclose(block_sum, explained, rtol=rtol, atol=0), (block_sum, explained)


def _relevance_at(model: nn.Module, module: nn.Module, x: torch.Tensor, **options) -> tuple[torch.Tensor, torch.Tensor]:
    """LRP alpha-beta (class 1): the relevance at ``module``'s output and the input map."""
    kept: list[torch.Tensor] = []

    def record(mod, inputs, output):
        if output.requires_grad:
            output.register_hook(lambda grad: kept.append(grad.detach().clone()))

    handle = module.register_forward_hook(record)
    try:
        relevance = attribute(model, x, "lrp_alphabeta", target=1, **options)
    finally:
        handle.remove()
    return kept[0], relevance


def test_lrp_dense_rules_at_the_classifier_input():
    """The default dense_rule (epsilon) hands the dense layers' input the relevance of the epsilon
    rule, i.e. (no biases, tiny epsilon) activation x gradient of the logit, computed here by autograd
    on the classifier alone; dense_rule alphabeta (beta 0) instead passes on positive contributions
    only, so its relevance is never negative where activations are not."""
    model = _bias_free_lrp_net("boehle3d")
    torch.manual_seed(5)
    x = torch.rand(2, 1, *SHAPE, dtype=torch.float64) + 0.1
    with torch.no_grad():
        features = model.features(x)
    a = features.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.classifier(torch.flatten(a, 1))[:, 1].sum(), a)
    expected = a.detach() * grad
    assert (expected < 0).any() and (expected > 0).any()  # the logit has evidence of both signs
    eps, _ = _relevance_at(model, model.features[-1], x, beta=0.0)
    scale = expected.abs().max().item()
    # epsilon 1e-6 against pre-activations of ~1e-3 in this small net: agreement to well under 1 % of the scale
    assert (eps - expected).abs().max() < 5e-3 * scale  # measured 4.6e-4
    ab, _ = _relevance_at(model, model.features[-1], x, beta=0.0, dense_rule="alphabeta")
    assert (ab >= -1e-9 * scale).all() and (ab - expected).abs().max() > 0.1 * scale
    # both conserve the explained logit at this layer
    assert torch.allclose(ab.sum(dim=(1, 2, 3, 4)), eps.sum(dim=(1, 2, 3, 4)), rtol=1e-3)


def test_lrp_wsquare_first_layer_ignores_the_input_values():
    """The default first_rule, w^2, spreads each first-layer neuron's relevance over its inputs by the
    squared weights alone (recomputed here with plain convolutions); z^B, which weighs by the input's
    values, gives a different map from the same first-layer relevance."""
    model = _bias_free_lrp_net("boehle3d")
    x = torch.rand(1, 1, *SHAPE, dtype=torch.float64) + 0.1
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv3d))
    r_out, w2 = _relevance_at(model, conv, x)  # relevance at the first convolution's output, input map
    zb = attribute(model, x, "lrp_alphabeta", target=1, first_rule="zbox")
    assert torch.allclose(w2.sum(), zb.sum(), rtol=1e-3)  # same relevance enters the first layer
    # the defining formula, on the first convolution: R_i = sum_j w_ij^2 / (sum_i' w_i'j^2) R_j
    w = conv.weight.detach()
    denom = F.conv3d(torch.ones_like(x), w**2, padding=conv.padding, stride=conv.stride)
    expected = F.conv_transpose3d(r_out / denom, w**2, padding=conv.padding, stride=conv.stride)
    assert torch.allclose(w2, expected, rtol=1e-4, atol=1e-9 * expected.abs().max().item())
    assert not torch.allclose(zb, expected, rtol=1e-2)


def test_lrp_epsilon_without_biases_is_gradient_x_input():
    model = _bias_free_lrp_net("boehle3d")
    x = torch.rand(1, 1, *SHAPE, dtype=torch.float64)
    lrp = attribute(model, x, "lrp_epsilon", epsilon=1e-12)
    gxi = attribute(model, x, "gradient_x_input")
    assert torch.allclose(lrp, gxi, rtol=1e-6, atol=1e-9 * gxi.abs().max().item())


# ---------------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------------


def test_gradient_x_input_matches_finite_differences():
    torch.manual_seed(2)
    model = build_model("boehle3d", (12, 12, 12), filters=(4, 4, 4, 4), hidden=8).double().eval()
    x = torch.randn(1, 1, 12, 12, 12, dtype=torch.float64)
    with torch.no_grad():
        target = int(model(x).argmax())
    gxi = attribute(model, x, "gradient_x_input", target=target)
    step = 1e-6
    rng = np.random.default_rng(0)
    for flat in rng.choice(x.numel(), size=6, replace=False):
        voxel = np.unravel_index(flat, x.shape)
        up, down = x.clone(), x.clone()
        up[voxel] += step
        down[voxel] -= step
        with torch.no_grad():
            derivative = (model(up)[0, target] - model(down)[0, target]) / (2 * step)
        expected = float(derivative * x[voxel])
        assert math.isclose(float(gxi[voxel]), expected, rel_tol=1e-5, abs_tol=1e-9), (voxel, gxi[voxel], expected)


# ---------------------------------------------------------------------------------------------
# Grad-CAM
# ---------------------------------------------------------------------------------------------


class _TinyNet(nn.Module):
    """``classifier(flatten(features(x)))`` with a ``last_conv`` property, like the ConvNets."""

    def __init__(self, features: nn.Sequential, classifier: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier

    @property
    def last_conv(self) -> nn.Module:
        """The last convolution of ``features``."""
        return [m for m in self.features.modules() if isinstance(m, nn.Conv3d)][-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self.classifier(torch.flatten(self.features(x), 1))


def _cam_net() -> _TinyNet:
    """MaxPool 2 -> 1x1x1 conv (channel 0 copies the pooled input, channel 1 is 0.5 x it) -> linear.

    The class-1 logit weighs channel 0 by +1 everywhere and channel 1 by a ramp from -1 to 1
    along the last axis: averaged over all three axes the channel weights are exactly (1, 0), so
    the CAM is the pooled input itself; averaged per last-axis slice they would not be.
    """
    conv = nn.Conv3d(1, 2, 1, bias=False)
    features = nn.Sequential(nn.Sequential(nn.MaxPool3d(2)), nn.Sequential(conv, nn.ReLU()))
    linear = nn.Linear(2 * 6 * 6 * 6, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 0.5]).reshape(2, 1, 1, 1, 1))
        head = torch.zeros(2, 2, 6, 6, 6)
        head[1, 0] = 1.0
        head[1, 1] = torch.linspace(-1.0, 1.0, 6).reshape(1, 1, 6)
        linear.weight.copy_(head.reshape(2, -1))
    return _TinyNet(features, linear)


def test_gradcam_known_answer_and_all_axis_average():
    net = _cam_net()
    x = torch.zeros(1, 1, 12, 12, 12)
    x[0, 0, 2:6, 6:10, 4:8] = 1.0
    x += 0.01 * torch.rand_like(x)
    cam = attribute(net, x, "gradcam", target=1)
    assert cam.shape == x.shape
    # known answer: weights (1, 0) -> CAM = ReLU(pooled input), upsampled trilinearly
    pooled = F.max_pool3d(x, 2)
    expected = F.interpolate(pooled, size=(12, 12, 12), mode="trilinear", align_corners=False)
    assert torch.allclose(cam, expected, atol=1e-6)
    peak = np.unravel_index(int(cam.argmax()), cam.shape)
    assert 2 <= peak[2] < 6 and 6 <= peak[3] < 10 and 4 <= peak[4] < 8
    # manual Grad-CAM: activations and gradients of the last conv, averaged over ALL spatial axes
    maps = net.features[1][0](net.features[0](x)).detach().requires_grad_(True)
    score = net.classifier(torch.flatten(net.features[1][1](maps), 1))[0, 1]
    (gradient,) = torch.autograd.grad(score, maps)
    weights = gradient.mean(dim=(2, 3, 4), keepdim=True)
    assert torch.allclose(weights.flatten(), torch.tensor([1.0, 0.0]), atol=1e-6)
    manual = F.interpolate(F.relu((weights * maps).sum(1, keepdim=True)), size=(12, 12, 12), mode="trilinear")
    assert torch.allclose(cam, manual.detach(), atol=1e-6)
    # averaging over two axes only (per last-axis slice) would give a different map
    sliced = gradient.mean(dim=(2, 3), keepdim=True)
    wrong = F.interpolate(F.relu((sliced * maps).sum(1, keepdim=True)), size=(12, 12, 12), mode="trilinear")
    assert not torch.allclose(cam, wrong.detach(), atol=1e-3)


# ---------------------------------------------------------------------------------------------
# Occlusion
# ---------------------------------------------------------------------------------------------


def _region_net(region: tuple[slice, slice, slice]) -> _TinyNet:
    """Identity 1x1x1 conv, then a linear head whose class-0 logit sums the input over ``region``."""
    conv = nn.Conv3d(1, 1, 1, bias=False)
    linear = nn.Linear(12 * 12 * 12, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        head = torch.zeros(2, 12, 12, 12)
        head[(0, *region)] = 1.0
        head[(1, *region)] = -1.0
        linear.weight.copy_(head.reshape(2, -1))
    return _TinyNet(nn.Sequential(nn.Sequential(conv)), linear)


def test_occlusion_starts_cover_every_voxel():
    assert occlusion_starts(12, 4, 4) == [0, 4, 8]
    assert occlusion_starts(12, 4, 3) == [0, 3, 6, 8]
    assert occlusion_starts(5, 5, 2) == [0]
    with pytest.raises(ValueError, match="larger than the axis"):
        occlusion_starts(3, 4, 1)


@pytest.mark.parametrize("batch, stride, batch_size", [(1, 4, 5), (2, 3, 7)])
def test_occlusion_is_batched_and_finds_the_informative_region(caplog, batch, stride, batch_size):
    region = (slice(0, 4), slice(4, 8), slice(8, 12))
    net = _region_net(region)
    calls = []
    net.register_forward_pre_hook(lambda module, inputs: calls.append(inputs[0].shape[0]))
    x = torch.ones(batch, 1, 12, 12, 12)
    n_positions = len(occlusion_starts(12, 4, stride)) ** 3
    expected_passes = math.ceil(batch * n_positions / batch_size)
    with caplog.at_level(logging.INFO, logger="mrixai.explain.attribution"):
        result, n_forward = occlusion(net, x, patch=4, stride=stride, batch_size=batch_size)
    assert n_forward == expected_passes
    logged = re.search(r"in (\d+) forward passes", caplog.text)
    assert logged and int(logged.group(1)) == expected_passes
    # one reference pass of the unoccluded inputs, then the batched occluded copies
    assert len(calls) == 1 + expected_passes and max(calls[1:]) == min(batch_size, batch * n_positions)
    inside = torch.zeros(12, 12, 12, dtype=torch.bool)
    inside[region] = True
    for sample in range(batch):
        peak = np.unravel_index(int(result[sample, 0].argmax()), (12, 12, 12))
        assert inside[peak]
        assert result[sample, 0][inside].min() > 0 and result[sample, 0].min() >= 0
        if stride == 4:  # aligned patches: occluding the region removes the whole logit (64), nothing else matters
            assert torch.allclose(result[sample, 0][inside], torch.full((64,), 64.0))
            assert torch.allclose(result[sample, 0][~inside], torch.zeros(1))
        else:  # overlapping patches also credit the region's neighbours, less
            assert result[sample, 0][inside].mean() > 5 * result[sample, 0][~inside].mean()
    assert torch.equal(attribute(net, x, "occlusion", patch=4, stride=stride, batch_size=batch_size), result)


# ---------------------------------------------------------------------------------------------
# All methods, options, sanity helper
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, shape", [("boehle3d", SHAPE), ("caffenet2d", (32, 32))])
def test_every_method_gives_an_input_shaped_map_and_leaves_the_model(name, shape):
    torch.manual_seed(3)
    model = build_model(name, shape)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(2, 1, *shape)
    quick = {"integrated_gradients": {"n_steps": 4}, "occlusion": {"patch": 8, "stride": 8, "batch_size": 64}}
    for method in METHODS:
        result = attribute(model, x, method, target=[0, 1], **quick.get(method, {}))
        assert result.shape == x.shape and result.dtype == x.dtype, method
        assert torch.isfinite(result).all() and not result.requires_grad, method
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_spearman_maps_on_known_inputs():
    a = torch.rand(4, 5, 6)
    assert spearman_maps(a, a) == pytest.approx(1.0)
    assert spearman_maps(a, -a) == pytest.approx(-1.0)
    assert spearman_maps(a.numpy(), 2 * a.numpy() + 3) == pytest.approx(1.0)
    assert math.isnan(spearman_maps(a, torch.zeros_like(a)))
    with pytest.raises(ValueError, match="same shape"):
        spearman_maps(a, a[:2])


def test_unknown_methods_and_bad_options_are_value_errors():
    model = build_model("boehle3d", (12, 12, 12), filters=(2, 2, 2, 2), hidden=4)
    x = torch.rand(1, 1, 12, 12, 12)
    assert method_options("lrp_alphabeta") == {
        "beta": 0.0, "first_rule": "wsquare", "dense_rule": "epsilon", "low": None, "high": None
    }  # fmt: skip
    with pytest.raises(ValueError, match="'saliency'"):
        attribute(model, x, "saliency")
    with pytest.raises(ValueError, match="'eps'"):
        attribute(model, x, "lrp_epsilon", eps=0.1)
    with pytest.raises(ValueError, match="'beta'.*0.3"):
        attribute(model, x, "lrp_alphabeta", beta=0.3)
    with pytest.raises(ValueError, match="'first_rule'.*'gamma'"):
        method_options("lrp_alphabeta", first_rule="gamma")
    with pytest.raises(ValueError, match="'dense_rule'.*'zplus'"):
        method_options("lrp_alphabeta", dense_rule="zplus")
    with pytest.raises(ValueError, match="'epsilon'.*-1"):
        method_options("lrp_epsilon", epsilon=-1)
    with pytest.raises(ValueError, match="'n_steps'"):
        method_options("integrated_gradients", n_steps=0)
    with pytest.raises(ValueError, match="'patch'"):
        method_options("occlusion", patch=(4, 0, 4))
    with pytest.raises(ValueError, match="'patch'.*3 values"):
        attribute(model, x, "occlusion", patch=(4, 4))
    with pytest.raises(ValueError, match="z\\^B box"):
        attribute(model, x, "lrp_alphabeta", first_rule="zbox", low=0.2, high=0.5)
    with pytest.raises(ValueError, match="target"):
        attribute(model, x, "gradient_x_input", target=2)
    with pytest.raises(ValueError, match="'gradcam'"):
        method_options("gradcam", layer="x")

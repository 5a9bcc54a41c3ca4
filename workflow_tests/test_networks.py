"""CNN architectures: shapes, the Böhle structure, the PIF layer against its loop reference, freezing."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from mrixai.learn.networks import (
    MODEL_NAMES,
    PatchIndividualConv3d,
    PatchIndividualConv3dLoop,
    build_model,
    copy_weights,
    freeze_blocks,
    model_options,
    set_frozen_eval,
)

REPO = Path(__file__).resolve().parents[1]
SMALL_3D = [(24, 28, 24), (48, 57, 48)]
# The PIF model's last block must see >= 3 voxels per axis (a shifted patch of 2 starting at 1):
# 36x42x36 gives 3x3x3 there, 48x57x48 gives 4x4x4.
PIF_3D = [(36, 42, 36), (48, 57, 48)]
SMALL_2D = [(32, 32), (64, 64)]
CASES = [(name, shape) for name in ("boehle3d", "elu64") for shape in SMALL_3D]
CASES += [("boehle3d_pif", shape) for shape in PIF_3D]
CASES += [("caffenet2d", shape) for shape in SMALL_2D]


def _build(name: str, shape: tuple[int, ...], seed: int = 0, **options) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(name, shape, **options)


@pytest.mark.parametrize(("name", "shape"), CASES)
def test_output_shape_and_structure(name, shape):
    model = _build(name, shape)
    out = model(torch.randn(2, 1, *shape))
    assert out.shape == (2, 2)
    assert torch.isfinite(out).all()
    assert isinstance(model.features, nn.Sequential) and isinstance(model.classifier, nn.Sequential)
    assert all(isinstance(block, nn.Sequential) for block in model.features)
    flat = model.features(torch.zeros(1, 1, *shape)).flatten(1).shape[1]
    first_linear = next(m for m in model.classifier if isinstance(m, nn.Linear))
    assert first_linear.in_features == flat == model.n_features
    assert isinstance(model.last_conv, (nn.Conv2d, nn.Conv3d, PatchIndividualConv3d))
    last_block_convs = [m for m in model.features[-1] if isinstance(m, (nn.Conv2d, nn.Conv3d, PatchIndividualConv3d))]
    assert model.last_conv is last_block_convs[-1]
    for module in model.modules():
        assert not getattr(module, "inplace", False), f"in-place activation {module} in {name}"


def test_caffenet2d_layers():
    model = _build("caffenet2d", (64, 64))
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]
    pools = [i for i, block in enumerate(model.features) if any(isinstance(m, nn.MaxPool2d) for m in block)]
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [c.out_channels for c in convs] == [32, 64, 96, 96, 64]
    assert pools == [0, 1, 4]
    assert [(m.in_features, m.out_features) for m in linears] == [(64 * 8 * 8, 256), (256, 128), (128, 2)]
    assert [m.p for m in model.classifier if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    assert _build("caffenet2d", (32, 32)).classifier[0].in_features == 64 * 4 * 4


def test_elu64_layers():
    model = _build("elu64", (24, 28, 24))
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv3d)]
    assert len(model.features) == 4 and [c.out_channels for c in convs] == [64] * 4
    assert sum(isinstance(m, nn.ELU) for m in model.features.modules()) == 4
    assert all(m.ceil_mode and m.kernel_size == 2 for m in model.features.modules() if isinstance(m, nn.MaxPool3d))
    # 24 -> 12 -> 6 -> 3 -> 2 (ceil), 28 -> 14 -> 7 -> 4 (ceil) -> 2
    assert model.feature_shape == (64, 2, 2, 2)
    assert isinstance(model.classifier[0], nn.Dropout) and model.classifier[0].p == 0.4


def test_boehle3d_full_size_flattened_size():
    model = _build("boehle3d", (96, 114, 96)).eval()
    # pools 2, 3, 2, 3 with floor rounding (every axis is at least as long as the kernel):
    # 96 -> 48 -> 16 -> 8 -> 2;  114 -> 57 -> 19 -> 9 -> 3;  96 -> 48 -> 16 -> 8 -> 2
    dims = [96, 114, 96]
    for kernel in (2, 3, 2, 3):
        dims = [d // kernel for d in dims]
    assert dims == [2, 3, 2]
    assert model.classifier[0].in_features == 64 * 2 * 3 * 2 == 768
    assert not any(m.ceil_mode for m in model.modules() if isinstance(m, nn.MaxPool3d))
    with torch.no_grad():
        assert model(torch.randn(1, 1, 96, 114, 96)).shape == (1, 2)


def test_boehle3d_parameter_structure():
    model = _build("boehle3d", (48, 57, 48))
    assert len(model.features) == 4
    convs = [next(m for m in block if isinstance(m, nn.Conv3d)) for block in model.features]
    pools = [next(m for m in block if isinstance(m, nn.MaxPool3d)) for block in model.features]
    assert [c.out_channels for c in convs] == [8, 16, 32, 64]
    assert all(c.kernel_size == (3, 3, 3) and c.padding == (1, 1, 1) for c in convs)
    assert [p.kernel_size for p in pools] == [2, 3, 2, 3] and [p.stride for p in pools] == [2, 3, 2, 3]
    for block in model.features:
        assert [type(m) for m in block] == [nn.Conv3d, nn.BatchNorm3d, nn.ReLU, nn.MaxPool3d]
    assert [type(m) for m in model.classifier] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert model.classifier[0].out_features == 128 and model.classifier[2].p == 0.4
    assert model.classifier[3].in_features == 128 and model.classifier[3].out_features == 2
    custom = _build("boehle3d", (48, 57, 48), dropout=0.2, filters=(4, 4, 8, 8))
    assert custom.classifier[2].p == 0.2 and custom.last_conv.out_channels == 8


def test_boehle3d_small_input_uses_ceil_mode():
    model = _build("boehle3d", (24, 28, 24))
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool3d)]
    # 24 -> 12 -> 4 -> 2, then 2 < 3: the last pool switches to ceil mode and gives 1
    assert [p.ceil_mode for p in pools] == [False, False, False, True]
    assert model.feature_shape == (64, 1, 1, 1)


def test_boehle3d_pif_structure():
    plain, pif = _build("boehle3d", (48, 57, 48)), _build("boehle3d_pif", (48, 57, 48))
    layer = pif.last_conv
    assert isinstance(layer, PatchIndividualConv3d) and isinstance(pif.features[-1][0], PatchIndividualConv3d)
    # 48x57x48 -> 24x28x24 -> 8x9x8 -> 4x4x4 at the input of the last block
    assert layer.input_shape == (4, 4, 4) and layer.in_channels == 32 and layer.out_channels == 64
    assert pif.features[-1][1].num_features == 128
    assert pif.classifier[0].in_features == 2 * plain.classifier[0].in_features
    single = _build("boehle3d_pif", (48, 57, 48), overlap=False, patch_size=3)
    assert single.last_conv.strains == ("main",) and single.features[-1][1].num_features == 64
    assert single.classifier[0].in_features == plain.classifier[0].in_features


def test_models_are_deterministic():
    for name, shape in [("boehle3d_pif", (36, 42, 36)), ("caffenet2d", (32, 32))]:
        a, b = _build(name, shape, seed=3).eval(), _build(name, shape, seed=3).eval()
        for (key, value), other in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(value, other), key
        x = torch.randn(2, 1, *shape)
        assert torch.equal(a(x), b(x))
    assert model_options("boehle3d_pif")["patch_size"] == 2


@pytest.mark.parametrize(("name", "shape"), CASES)
def test_channels_last_layout_gives_the_same_outputs_and_gradients(name, shape):
    """Training runs in channels-last memory on CPU and CUDA: the layout must change speed only.
    Both layouts start from the same weights and are held to the float64 contiguous model."""
    from mrixai.learn.train import memory_format

    fmt = memory_format(len(shape), torch.device("cpu"))
    assert fmt == (torch.channels_last_3d if len(shape) == 3 else torch.channels_last)
    x = torch.randn(3, 1, *shape, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 1])
    # training mode (batch statistics, dropout with the same masks): the outputs agree
    ref, fast = _build(name, shape).train().double(), _build(name, shape).train().to(memory_format=fmt)
    torch.manual_seed(2)
    out_ref = ref(x.double())
    torch.manual_seed(2)
    out_fast = fast(x.contiguous(memory_format=fmt))
    assert torch.allclose(out_fast.double(), out_ref, atol=1e-4, rtol=1e-4)
    # evaluation mode, where the gradients are well conditioned (batch norm over 3 samples in
    # training mode turns float32 round-off into percent-level gradient differences in either
    # layout): every parameter's gradient agrees to 1 % of its own scale, whereas a layout bug (a
    # permuted axis) would be of the order of the gradient itself
    ref, fast = _build(name, shape).eval().double(), _build(name, shape).eval().to(memory_format=fmt)
    nn.functional.cross_entropy(ref(x.double()), y).backward()
    nn.functional.cross_entropy(fast(x.contiguous(memory_format=fmt)), y).backward()
    overall = max(float(p.grad.abs().max()) for p in ref.parameters())
    for (pname, a), b in zip(ref.named_parameters(), fast.parameters()):
        scale = float(a.grad.abs().max()) + 1e-3 * overall
        assert float((b.grad.double() - a.grad).abs().max()) <= 1e-2 * scale, pname
    # a state dict saved from the channels-last model loads into a contiguous one unchanged
    plain = _build(name, shape, seed=7).eval()
    plain.load_state_dict(fast.state_dict())
    assert torch.allclose(plain(x), fast(x.contiguous(memory_format=fmt)), atol=1e-5, rtol=1e-4)


def test_mps_and_other_devices_keep_the_contiguous_layout():
    from mrixai.learn.train import memory_format

    assert memory_format(3, torch.device("mps")) == torch.contiguous_format
    assert memory_format(3, torch.device("cuda")) == torch.channels_last_3d


@pytest.mark.parametrize("overlap", [False, True])
@pytest.mark.parametrize(("shape", "patch_size"), [((4, 4, 4), 2), ((5, 7, 3), 2), ((7, 5, 8), 3)])
def test_pif_grouped_equals_loop(shape, patch_size, overlap):
    torch.manual_seed(1)
    grouped = PatchIndividualConv3d(3, 4, shape, patch_size=patch_size, overlap=overlap)
    loop = copy_weights(grouped, PatchIndividualConv3dLoop(3, 4, shape, patch_size=patch_size, overlap=overlap))
    x = torch.randn(2, 3, *shape, requires_grad=True)
    weights = torch.randn(2, grouped.n_output_channels, *shape)
    results = []
    for layer in (grouped, loop):
        x.grad = None
        out = layer(x)
        (out * weights).sum().backward()
        results.append((out.detach(), x.grad.clone(), {k: p.grad.clone() for k, p in layer.named_parameters()}))
    (out_a, grad_a, params_a), (out_b, grad_b, params_b) = results
    assert out_a.shape == (2, 4 * len(grouped.strains), *shape)
    torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=0)
    torch.testing.assert_close(grad_a, grad_b, atol=1e-5, rtol=0)
    assert params_a.keys() == params_b.keys()
    for key in params_a:
        torch.testing.assert_close(params_a[key], params_b[key], atol=1e-5, rtol=0)


def _hand_regions(starts_per_axis, p):
    """All patch boxes (C order) from per-axis start lists."""
    import itertools

    return [tuple(slice(a, a + p) for a in corner) for corner in itertools.product(*starts_per_axis)]


@pytest.mark.parametrize(
    ("shape", "patch_size", "main_starts", "main_stops", "shifted_starts"),
    [
        # 7 voxels, patches of 2: main 0-1, 2-3, 4-5, 6 (+1 padded); borders at 2, 4, 6, and a
        # shifted patch centred on each: 1-2, 3-4, 5-6 (all inside the 7 voxels).
        # 6 voxels: main 0-1, 2-3, 4-5; borders 2, 4; shifted 1-2, 3-4 (voxel 5 in no shifted patch).
        # 5 voxels: main 0-1, 2-3, 4 (+1 padded); borders 2, 4; shifted 1-2, 3-4.
        ((7, 6, 5), 2, ([0, 2, 4, 6], [0, 2, 4], [0, 2, 4]), (7, 6, 5), ([1, 3, 5], [1, 3], [1, 3])),
        # 9 voxels, patches of 4 (shift 2): main 0-3, 4-7, 8 (+3 padded); borders 4 and 8; the
        # shifted patch on border 8 would be 6-9 and reach past voxel 8, so only 2-5 is kept.
        # 8 voxels: main 0-3, 4-7; border 4; shifted 2-5. 6 voxels: main 0-3, 4-5; shifted 2-5.
        ((9, 8, 6), 4, ([0, 4, 8], [0, 4], [0, 4]), (9, 8, 6), ([2], [2], [2])),
    ],
)
def test_pif_shifted_strain_covers_only_interior_patches(shape, patch_size, main_starts, main_stops, shifted_starts):
    layer = PatchIndividualConv3d(2, 3, shape, patch_size=patch_size, overlap=True)
    assert layer.grid("main") == tuple(len(s) for s in main_starts)
    assert layer.grid("shifted") == tuple(len(s) for s in shifted_starts)
    assert layer.n_patches("shifted") == math.prod(len(s) for s in shifted_starts)
    # main patches are clipped to the map where they were padded
    main = [tuple(slice(r.start, min(r.stop, n)) for r, n in zip(box, main_stops))
            for box in _hand_regions(main_starts, patch_size)]
    assert [layer.patch_region("main", i) for i in range(layer.n_patches("main"))] == main
    # shifted patches are whole patches, never clipped or padded
    shifted = _hand_regions(shifted_starts, patch_size)
    assert [layer.patch_region("shifted", i) for i in range(layer.n_patches("shifted"))] == shifted
    assert all(r.stop - r.start == patch_size and r.stop <= n for box in shifted for r, n in zip(box, shape))


def test_pif_shifted_strain_output_and_inputs_stay_inside_its_patches():
    """The shifted strain's map is zero exactly outside the union of its patches, and input outside
    that union (the low edge, the uncovered high end) never reaches it."""
    torch.manual_seed(2)
    shape = (7, 6, 5)
    layer = PatchIndividualConv3d(2, 3, shape, patch_size=2, overlap=True)
    covered = torch.zeros(shape, dtype=torch.bool)
    covered[1:7, 1:5, 1:5] = True  # union of the hand-derived patches above
    x = torch.randn(2, 2, *shape)
    with torch.no_grad():
        out = layer(x)
        assert out.shape == (2, 6, *shape)
        shifted = out[:, 3:]
        assert (shifted[..., ~covered] == 0).all() and (shifted[..., covered] != 0).all()
        y = x.clone()
        y[..., ~covered] = torch.randn_like(y[..., ~covered]) + 5.0
        assert torch.equal(layer(y)[:, 3:], shifted)


@pytest.mark.parametrize("shape", [(7, 6, 5), (4, 4, 4)])
def test_pif_every_patch_filter_gets_a_gradient(shape):
    torch.manual_seed(5)
    layer = PatchIndividualConv3d(2, 3, shape, patch_size=2, overlap=True)
    out = layer(torch.randn(2, 2, *shape))
    (out * torch.randn_like(out)).sum().backward()
    for strain in layer.strains:
        grads = layer.weights[strain].grad
        assert grads.shape[0] == layer.n_patches(strain)
        per_patch = grads.flatten(1).abs().sum(dim=1)
        assert (per_patch > 0).all(), f"{strain}: patches without a gradient {torch.nonzero(per_patch == 0)}"
        assert (layer.biases[strain].grad.abs().sum(dim=1) > 0).all()


def test_pif_layer_refuses_a_map_too_small_for_a_shifted_patch():
    with pytest.raises(ValueError, match=r"input_shape=\(2, 4, 4\)"):
        PatchIndividualConv3d(2, 3, (2, 4, 4), patch_size=2, overlap=True)
    with pytest.raises(ValueError, match="overlap=False"):
        build_model("boehle3d_pif", (24, 28, 24))  # 2x2x2 at the last block
    assert build_model("boehle3d_pif", (24, 28, 24), overlap=False).last_conv.strains == ("main",)


@pytest.mark.parametrize("strain", ["main", "shifted"])
def test_pif_no_weight_sharing(strain):
    torch.manual_seed(3)
    shape = (5, 6, 4)
    layer = PatchIndividualConv3d(2, 3, shape, patch_size=2, overlap=strain == "shifted")
    channels = slice(0, 3) if strain == "main" else slice(3, 6)
    x = torch.randn(1, 2, *shape)
    with torch.no_grad():
        before = layer(x)
        index = 3
        layer.weights[strain][index] += 1.0
        after = layer(x)
    region = (slice(None), channels, *layer.patch_region(strain, index))
    changed = (after != before)
    assert changed[region].all()
    changed[region] = False
    assert not changed.any(), "changing one patch's filters changed outputs outside that patch"


def test_pif_patch_sees_only_its_input():
    torch.manual_seed(4)
    layer = PatchIndividualConv3d(2, 3, (6, 6, 6), patch_size=3, overlap=False)
    x = torch.randn(1, 2, 6, 6, 6)
    region = layer.patch_region("main", 5)
    assert region == (slice(3, 6), slice(0, 3), slice(3, 6))  # grid (2, 2, 2), C order
    y = x.clone()
    y[(slice(None), slice(None), *region)] += 1.0
    with torch.no_grad():
        changed = layer(y) != layer(x)
    assert changed[(slice(None), slice(None), *region)].any()
    changed[(slice(None), slice(None), *region)] = False
    assert not changed.any()


def test_freeze_blocks():
    model = _build("boehle3d", (24, 28, 24))
    freeze_blocks(model, 2)
    assert model.frozen_blocks == 2
    assert all(not p.requires_grad for block in model.features[:2] for p in block.parameters())
    assert all(p.requires_grad for block in model.features[2:] for p in block.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    model.train()
    assert not model.features[0].training and not model.features[1][1].training
    assert model.features[2].training and model.classifier.training
    for _ in range(2):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(torch.randn(4, 1, 24, 28, 24)), torch.tensor([0, 1, 0, 1]))
        loss.backward()
        optimizer.step()
    after = model.state_dict()
    for key, value in before.items():
        block = int(key.split(".")[1]) if key.startswith("features.") else None
        if block is not None and block < 2:
            assert torch.equal(after[key], value), f"frozen {key} changed"
        elif not key.endswith("num_batches_tracked"):
            assert not torch.equal(after[key], value), f"trainable {key} did not change"
    freeze_blocks(model, 0)
    assert all(p.requires_grad for p in model.parameters()) and model.features[0].training
    model.features[0].eval()
    model.frozen_blocks = 1
    set_frozen_eval(model.train())
    assert not model.features[0].training
    with pytest.raises(ValueError, match="5"):
        freeze_blocks(model, 5)


def test_unknown_model_name():
    with pytest.raises(ValueError) as error:
        build_model("resnet50", (24, 28, 24))
    assert "resnet50" in str(error.value)
    assert all(name in str(error.value) for name in MODEL_NAMES)


@pytest.mark.parametrize("patch_size", [0, -2, 1.5, True])
def test_bad_patch_size(patch_size):
    with pytest.raises(ValueError, match="patch_size"):
        build_model("boehle3d_pif", (24, 28, 24), patch_size=patch_size)


def test_bad_arguments():
    with pytest.raises(ValueError, match="patch_size"):
        PatchIndividualConv3d(2, 3, (4, 4, 4), patch_size=1, overlap=True)
    with pytest.raises(ValueError, match=r"\(24, 28\)"):
        build_model("boehle3d", (24, 28))
    with pytest.raises(ValueError, match="input_shape"):
        build_model("caffenet2d", (32, 32, 32))
    with pytest.raises(ValueError, match="input_shape"):
        build_model("elu64", (24, 0, 24))
    with pytest.raises(ValueError, match="patch_size"):
        build_model("boehle3d", (24, 28, 24), patch_size=2)
    with pytest.raises(ValueError, match="dropout"):
        build_model("boehle3d", (24, 28, 24), dropout=1.5)
    with pytest.raises(ValueError, match="n_classes"):
        build_model("caffenet2d", (32, 32), n_classes=0)
    model = _build("caffenet2d", (32, 32))
    with pytest.raises(ValueError, match="expects input"):
        model(torch.zeros(1, 1, 64, 64))
    layer = PatchIndividualConv3d(2, 3, (4, 4, 4))
    with pytest.raises(ValueError, match="patch index"):
        layer.patch_region("main", math.prod(layer.grid("main")))
    with pytest.raises(ValueError, match="configuration"):
        copy_weights(layer, PatchIndividualConv3dLoop(2, 3, (4, 4, 5)))


def test_benchmark_importable():
    spec = importlib.util.spec_from_file_location("pif_layer", REPO / "benchmarks" / "pif_layer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.compare_pif("cpu", repeats=1, batch=1, input_shape=(48, 57, 48))
    assert result["feature_map"] == (32, 4, 4, 4)  # 48x57x48 -> 24x28x24 -> 8x9x8 -> 4x4x4
    assert result["max_abs_diff"] < 1e-5 and result["speedup"] > 0


def test_throughput_benchmark_runs_and_reports_the_layouts(capsys):
    spec = importlib.util.spec_from_file_location("train_throughput", REPO / "benchmarks" / "train_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = ["--device", "cpu", "--threads", "1", "--shape", "24", "28", "24", "--volumes", "8", "--epochs", "1",
            "--repeats", "1", "--skip-pif"]
    assert module.main(args) == 0
    out = capsys.readouterr().out
    assert "fp32+CL / fp32 = " in out and "end-to-end (fp32+CL, augment)" in out

"""Tests of the saliency-guided masking study (mrixai.masking) with hand-built answers."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import write_nifti
from mrixai.masking.metrics import class_metrics, lognormal_fit, mask_dice
from mrixai.masking.placement import (
    build_template,
    paste,
    place_template,
    place_template_weights,
    template_bank,
    transform_template,
)
from mrixai.masking.saliency import (
    enhance_saliency,
    guided_backprop_saliency,
    smooth_threshold,
)
from mrixai.masking.slices import normalise_slice, select_slices
from mrixai.masking.study import run_masking_study, split_subjects
from mrixai.masking.train import dice_loss, hard_dice
from mrixai.masking.unet import UNet2d

torch.set_num_threads(1)


def _ellipse(shape, centre, radii) -> np.ndarray:
    yy, xx = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    return ((yy - centre[0]) / radii[0]) ** 2 + ((xx - centre[1]) / radii[1]) ** 2 <= 1.0


# ---------------------------------------------------------------- enhancement
def test_smooth_threshold_values():
    z = np.array([2.0, 2.5, 1.5, 3.0, 10.0])
    out = smooth_threshold(z, centre=2.0, width=0.5)
    np.testing.assert_allclose(out, [1.0, math.exp(-1), math.exp(-1), math.exp(-4), math.exp(-64)], rtol=1e-6, atol=1e-12)
    step = smooth_threshold(z, centre=2.0, width=0.5, one_sided=True)
    np.testing.assert_allclose(step, [1.0, 1.0, math.exp(-1), 1.0, 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match="width"):
        smooth_threshold(z, width=0.0)


def test_enhance_saliency_is_zscored_log_of_stretched_magnitude():
    rng = np.random.default_rng(0)
    s = rng.lognormal(0.0, 1.0, size=(2, 16, 16)) * rng.choice([-1, 1], size=(2, 16, 16))
    out = enhance_saliency(s, log_offset=1e-3)
    for sl, o in zip(np.abs(s), out):
        stretched = (sl - sl.min()) / (sl.max() - sl.min())
        logged = np.log(stretched + 1e-3)
        np.testing.assert_allclose(o, (logged - logged.mean()) / logged.std(), rtol=1e-4, atol=1e-5)
        assert abs(o.mean()) < 1e-5 and abs(o.std() - 1) < 1e-4
    assert np.all(enhance_saliency(np.ones((4, 4))) == 0)  # a constant map carries no information


# ---------------------------------------------------------------- placement
def test_placement_recovers_known_shift_scale_and_rotation():
    template = _ellipse((21, 31), (10, 15), (10, 15))
    template = template[template.any(1)][:, template.any(0)]
    image = paste(template, (64, 80), 17, 29).astype(float)
    placed = place_template(image, template, scales=(0.8, 1.0, 1.2))
    assert (placed.top, placed.left, placed.scale) == (17, 29, 1.0)
    np.testing.assert_array_equal(placed.mask, image > 0)
    assert placed.score == pytest.approx(1.0)

    small = transform_template(template, 0.8)
    image = paste(small, (64, 80), 5, 40).astype(float)
    placed = place_template(image, template, scales=(0.6, 0.8, 1.0, 1.2))
    assert (placed.top, placed.left, placed.scale) == (5, 40, 0.8)

    rotated = transform_template(template, 1.0, 30.0)
    image = paste(rotated, (64, 80), 10, 20).astype(float)
    placed = place_template(image, template, angles=(-30.0, 0.0, 30.0))
    assert placed.angle == 30.0 and mask_dice(placed.mask, image > 0) == 1.0


def test_placement_ignores_scattered_noise_and_handles_an_empty_map():
    rng = np.random.default_rng(1)
    template = _ellipse((15, 15), (7, 7), (7, 7))
    truth = paste(template, (48, 48), 25, 8)
    noisy = np.where(truth, 0.8, 0.0) + (rng.random((48, 48)) < 0.05) * 1.0
    assert mask_dice(place_template(noisy, template).mask, truth) > 0.9
    empty = place_template(np.zeros((48, 48)), template)
    assert empty.score == 0.0 and empty.mask.sum() == template.sum()
    with pytest.raises(ValueError, match="non-negative"):
        place_template(-np.ones((48, 48)), template)


def test_placement_score_is_the_brute_force_maximum_of_the_tversky_index():
    # every shift of the template scored directly with numpy, no FFT: the placement must find the best
    rng = np.random.default_rng(4)
    score_map = rng.random((20, 24)) ** 3
    template = _ellipse((7, 9), (3, 4), (3, 4))
    h, w = template.shape
    padded = np.pad(score_map, ((h - 1, h - 1), (w - 1, w - 1)))
    for weight in (0.5, 0.7):
        scores = {
            (top, left): float((padded[top + h - 1 : top + 2 * h - 1, left + w - 1 : left + 2 * w - 1] * template).sum())
            / (weight * template.sum() + (1 - weight) * score_map.sum())
            for top in range(-h + 1, 20)
            for left in range(-w + 1, 24)
        }
        (top, left), best = max(scores.items(), key=lambda item: item[1])
        placed = place_template(score_map, template, area_weight=weight)
        assert (placed.top, placed.left) == (top, left)
        assert placed.score == pytest.approx(best, rel=1e-9)
    bank = template_bank(template, score_map.shape)
    many = place_template_weights(score_map, bank, (0.5, 0.7))
    assert [(p.top, p.left) for p in many] == [
        (p.top, p.left) for p in (place_template(score_map, template, area_weight=w) for w in (0.5, 0.7))
    ]
    with pytest.raises(ValueError, match="area_weight"):
        place_template(score_map, template, area_weight=1.0)
    with pytest.raises(ValueError, match="shape"):
        place_template_weights(score_map[:10], bank)


def test_area_weight_keeps_the_template_off_a_salient_scalp_ring():
    # brain: a disc of radius 12 (area ~452), scalp: a ring at radius 15..17 (area ~201), both of
    # saliency 1. Soft Tversky index of a disc template: radius 12: 452 / (w 452 + (1 - w) 653);
    # radius 17 (disc, gap and ring, area ~908): 653 / (w 908 + (1 - w) 653).
    # w = 0.5: 0.82 < 0.84, the template stretches over the ring; w = 0.7: 0.88 > 0.79, it fits the brain.
    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(yy - 30, xx - 33)
    brain = r <= 12
    score_map = np.where(brain | ((r >= 15) & (r <= 17)), 1.0, 0.0)
    template = _ellipse((25, 25), (12, 12), (12, 12))
    scales = tuple(np.round(np.arange(0.8, 1.61, 0.05), 2))
    loose = place_template(score_map, template, scales, area_weight=0.5)
    tight = place_template(score_map, template, scales, area_weight=0.7)
    assert loose.scale > 1.2 and mask_dice(loose.mask, brain) < 0.8
    assert tight.scale == 1.0 and mask_dice(tight.mask, brain) > 0.95


def test_saliency_concentrated_in_the_brain_places_the_mask_on_it():
    # The whole test-time chain on one slice: log-normal saliency magnitudes, higher inside an
    # elliptic brain (shifted off-centre) than on the head around it and in the air; enhancement,
    # smooth threshold at the z the brain reaches, template from centred training ellipses.
    rng = np.random.default_rng(5)
    shape = (96, 112)
    brain = _ellipse(shape, (55, 50), (28, 34))
    head = _ellipse(shape, (55, 50), (36, 42))
    mu = np.where(brain, 0.0, np.where(head, -3.0, -6.0))
    saliency = rng.lognormal(mu, 0.5) * rng.choice([-1.0, 1.0], size=shape)
    z = enhance_saliency(saliency)
    centre = float(np.median(z[brain]))  # the brain's typical enhanced value, derived from the map
    training = np.stack([_ellipse(shape, (48, 56), (28 * f, 34 * f)) for f in (0.95, 1.0, 1.05)])
    template = build_template(training)
    placed = place_template(smooth_threshold(z, centre, 0.5), template, (0.9, 1.0, 1.1), area_weight=0.6)
    assert mask_dice(placed.mask, brain) > 0.9
    centred = paste(template, shape, *((np.array(shape) - template.shape) // 2))
    assert mask_dice(placed.mask, brain) > mask_dice(centred, brain) + 0.1


def test_template_from_shifted_masks_is_the_common_shape():
    disc = _ellipse((41, 41), (20, 20), (6, 9))  # centred on the grid: integer alignment shifts
    masks = np.stack([np.roll(disc, (dy, dx), axis=(0, 1)) for dy, dx in [(-8, 3), (5, -10), (0, 0), (9, 9)]])
    template = build_template(masks)
    expected = disc[disc.any(1)][:, disc.any(0)]
    np.testing.assert_array_equal(template, expected)
    with pytest.raises(ValueError, match="empty"):
        build_template(np.zeros((2, 8, 8), bool))


# ---------------------------------------------------------------- metrics
def test_class_metrics_on_a_hand_made_label_pair():
    truth = np.array([[0, 0, 1, 1], [2, 2, 3, 0]])
    pred = np.array([[0, 1, 1, 1], [2, 3, 3, 0]])
    table = class_metrics(pred, truth).set_index("class")
    # GM (1): TP 2, FP 1, FN 0, TN 5
    gm = table.loc["GM"]
    assert (gm.tp, gm.fp, gm.fn, gm.tn) == (2, 1, 0, 5)
    assert gm.accuracy == pytest.approx(7 / 8)
    assert gm.specificity == pytest.approx(5 / 6)
    assert gm.sensitivity == pytest.approx(1.0)
    assert gm.dice == pytest.approx(4 / 5)
    # WM (2): TP 1, FN 1 -> sensitivity 1/2, Dice 2/3; CSF (3): TP 1, FP 1 -> Dice 2/3
    assert table.loc["WM", "sensitivity"] == pytest.approx(0.5)
    assert table.loc["WM", "dice"] == pytest.approx(2 / 3)
    assert table.loc["CSF", "dice"] == pytest.approx(2 / 3)
    assert table.loc["background", "sensitivity"] == pytest.approx(2 / 3)
    assert hard_dice(pred, truth) == pytest.approx((4 / 5 + 2 / 3 + 2 / 3) / 3)


def test_lognormal_fit_recovers_parameters_and_rejects_another_law():
    rng = np.random.default_rng(3)
    sample = rng.lognormal(mean=1.0, sigma=0.5, size=40000)
    fit = lognormal_fit(sample, sample_size=10000, seed=0)
    assert fit["sigma"] == pytest.approx(0.5, rel=0.03)
    assert fit["mu"] == pytest.approx(1.0, abs=0.03)
    assert fit["ks_p"] > 0.01 and fit["ks_d"] < fit["normal_ks_d"]
    other = lognormal_fit(rng.uniform(1, 2, size=40000), sample_size=10000, seed=0)
    assert other["ks_p"] < 1e-6


# ---------------------------------------------------------------- network and training
def test_unet_output_shape_for_any_slice_size():
    model = UNet2d(1, 4, base_channels=4, depth=3)
    out = model(torch.zeros(2, 1, 30, 37))
    assert out.shape == (2, 4, 30, 37)
    with pytest.raises(ValueError, match="depth"):
        UNet2d(depth=0)


def test_dice_loss_zero_for_a_perfect_prediction_and_high_for_a_wrong_one():
    target = torch.tensor([[[0, 1], [2, 3]], [[3, 2], [1, 0]]])
    onehot = torch.nn.functional.one_hot(target, 4).permute(0, 3, 1, 2).float()
    assert float(dice_loss(100.0 * onehot, target)) < 1e-6
    wrong = torch.nn.functional.one_hot((target + 1) % 4, 4).permute(0, 3, 1, 2).float()
    assert float(dice_loss(100.0 * wrong, target)) > 0.99


def test_guided_backprop_saliency_shape_and_model_untouched():
    torch.manual_seed(0)
    model = UNet2d(1, 4, base_channels=4, depth=2).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = np.random.default_rng(0).random((3, 16, 20)).astype(np.float32)
    sal = guided_backprop_saliency(model, x, "brain_margin", batch_size=2)
    assert sal.shape == x.shape and np.abs(sal).sum() > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ---------------------------------------------------------------- slices and split
def test_slice_selection_and_normalisation():
    mask = np.zeros((4, 4, 5), bool)
    mask[:, :, 1] = True  # area 16
    mask[:2, :, 2] = True  # area 8
    mask[:1, :1, 3] = True  # area 1
    np.testing.assert_array_equal(select_slices(mask, 0.5), [1, 2])
    np.testing.assert_array_equal(select_slices(mask, 0.05, step=2), [1, 3])
    x = np.zeros((3, 3))
    x[0, :] = [1, 2, 4]
    assert normalise_slice(x, 100.0).max() == pytest.approx(1.0)


def test_split_is_disjoint_and_complete():
    ids = [f"s{i}" for i in range(20)]
    split = split_subjects(ids, 0.2, 0.25, seed=1)
    assert sorted(split["train"] + split["val"] + split["test"]) == sorted(ids)
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (12, 4, 4)
    assert split == split_subjects(ids, 0.2, 0.25, seed=1)


# ---------------------------------------------------------------- tiny end-to-end study
def _toy_subject(root, name: str, rng: np.random.Generator, shape=(40, 48, 6)) -> dict:
    """An elliptic-cylinder "brain" (WM core, GM shell, CSF centre) inside a bright "scalp" ring
    with a dark "skull" gap, at a random in-plane position and size; noisy background."""
    xx, yy, _ = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    cx, cy = shape[0] / 2 + rng.uniform(-4, 4), shape[1] / 2 + rng.uniform(-4, 4)
    a, b = 11 * rng.uniform(0.9, 1.1), 14 * rng.uniform(0.9, 1.1)
    r = np.sqrt(((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2)
    dseg = np.zeros(shape, np.uint8)
    dseg[r < 1.0] = 1
    dseg[r < 0.75] = 2
    dseg[r < 0.3] = 3
    image = np.choose(dseg, [0.0, 0.6, 1.0, 0.2]).astype(np.float32)
    image[(r >= 1.25) & (r < 1.45)] = 0.7
    image = 100 * np.abs(image + rng.normal(0, 0.03, shape).astype(np.float32))
    record = {"subject": name}
    for key, data in (("image", image), ("mask", (dseg > 0).astype(np.uint8)), ("dseg", dseg)):
        record[key] = root / f"{name}_{key}.nii.gz"
        write_nifti(data, np.eye(4), record[key])
    return record


TOY_OPTIONS = {
    "seed": 0, "base_channels": 8, "depth": 2, "max_epochs": 60, "patience": 10, "slice_step": 1,
    "batch_size": 8, "template_scales": (0.9, 1.0, 1.1), "template_angles": (0.0,),
    # in the toy the brain's enhanced saliency sits at z ~ 1.25 (see threshold_sensitivity.tsv);
    # the study's centre 2 picks the scalp ring here, as on the synthetic cohort
    "tune_on_validation": False, "threshold_centre": 1.25, "area_weight": 0.5,
}  # fmt: skip
TOY_TUNING = {"tune_on_validation": True, "tuning_centres": (1.25, 2.0), "tuning_area_weights": (0.5, 0.7)}


@pytest.mark.slow
def test_tiny_study_saliency_mask_beats_no_mask(tmp_path):
    rng = np.random.default_rng(0)
    subjects = [_toy_subject(tmp_path, f"sub-{i:02d}", rng) for i in range(10)]
    out = tmp_path / "study"
    tables = run_masking_study(subjects, out, **TOY_OPTIONS)
    for name in ("metrics.tsv", "brain_mask_dice.tsv", "lognormal.tsv", "threshold_sensitivity.tsv", "model.pt"):
        assert (out / name).is_file(), name
    for case in ("manual", "saliency", "none"):
        assert (out / f"masking_case-{case}.png").is_file() and (out / f"masking_case-{case}.pdf").is_file()

    metrics = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert len(metrics) == 12 and set(metrics.case) == {"manual", "saliency", "none"}
    assert (metrics.n_slices == 12).all()  # 2 test subjects x 6 slices
    dice = metrics.pivot(index="case", columns="class", values="dice")
    assert dice.loc["manual", ["GM", "WM"]].min() > 0.95  # the segmenter learned the masked task
    assert dice.loc["none", "GM"] < 0.8  # the scalp ring is taken for tissue without a mask
    assert dice.loc["saliency", ["GM", "WM"]].mean() > dice.loc["none", ["GM", "WM"]].mean() + 0.1

    brain = tables["brain_mask_dice"].set_index(["method", "subject"])
    assert brain.loc[("saliency", "all"), "dice"] > 0.9
    assert brain.loc[("saliency", "all"), "dice"] > brain.loc[("template_centre", "all"), "dice"]
    lognormal = pd.read_csv(out / "lognormal.tsv", sep="\t")
    rows = [*sorted(tables["splits"].query("set == 'test'").subject), "all"]
    assert list(lognormal.subject) == [s for s in rows for _ in range(2)]
    assert list(lognormal.region) == ["slice", "brain"] * len(rows)
    assert (lognormal.query("region == 'brain'").n.values < lognormal.query("region == 'slice'").n.values).all()

    # Again with the centre and weight tuned on the validation subjects: the same training (seeded
    # and deterministic on the CPU), and the grid holds the first run's placement
    again = run_masking_study(subjects, tmp_path / "again", **{**TOY_OPTIONS, **TOY_TUNING, "figures": False})
    pd.testing.assert_frame_equal(again["history"].drop(columns="seconds"), tables["history"].drop(columns="seconds"))
    grid = pd.read_csv(tmp_path / "again" / "threshold_sensitivity.tsv", sep="\t")
    assert len(grid) == 2 * 2 * 2 and set(grid.set) == {"validation", "test"}
    fixed = grid[(grid.set == "test") & (grid.threshold_centre == 1.25) & (grid.area_weight == 0.5)]
    assert fixed.brain_mask_dice.iloc[0] == pytest.approx(brain.loc[("saliency", "all"), "dice"])
    # the centre and weight are those of the best validation Dice, whatever the test Dice says
    val = grid[grid.set == "validation"]
    chosen = val.loc[val.brain_mask_dice.idxmax(), ["threshold_centre", "area_weight"]].tolist()
    for name in ("validation", "test"):
        sel = grid[(grid.set == name) & grid.selected]
        assert len(sel) == 1 and sel[["threshold_centre", "area_weight"]].iloc[0].tolist() == chosen
    selected = grid[(grid.set == "test") & grid.selected].iloc[0]
    again_brain = again["brain_mask_dice"].set_index(["method", "subject"])
    assert selected.brain_mask_dice == pytest.approx(again_brain.loc[("saliency", "all"), "dice"])


def test_every_shipped_masking_option_is_a_keyword_of_the_study():
    """config.yaml's studies.masking keys (less enabled/training, which the rule reads itself) are
    passed to run_masking_study as keywords: each must be one, and the schema must know it."""
    import yaml

    from conftest import REPO

    options = yaml.safe_load((REPO / "config.yaml").read_text())["studies"]["masking"]
    keywords = set(inspect.signature(run_masking_study).parameters)
    schema = yaml.safe_load((REPO / "src" / "mrixai" / "schemas" / "config.schema.yaml").read_text())
    known = set(schema["properties"]["studies"]["properties"]["masking"]["properties"])
    assert options["enabled"] is True
    # reference_labels is read by the workflow's own rule (convert_reference_labels), not the study
    assert set(options) - {"enabled", "training", "reference_labels"} <= keywords
    assert set(options) <= known


# ---------------------------------------------------------------- tuning on the development cohort
def _tuning_module():
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("masking_tuning", REPO / "benchmarks" / "masking_tuning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", range(25))
def test_tuning_scores_never_use_the_study_test_subjects(seed):
    """benchmarks/masking_tuning.py scores options on the study's validation subjects and fits on its
    training subjects: for any seed and cohort size, none of them is one of the study's test subjects."""
    tuning = _tuning_module()
    rng = np.random.default_rng(seed)
    for n in (3, 10, int(rng.integers(4, 60))):
        ids = [f"{i:03d}" for i in rng.permutation(n) + 1]
        test_fraction, val_fraction = rng.uniform(0.05, 0.6, size=2)
        study = split_subjects(ids, test_fraction, val_fraction, seed)
        used = tuning.scoring_split(ids, test_fraction, val_fraction, seed)
        assert set(used) == {"train", "val"}
        assert used["val"] and used["train"]
        assert not (set(used["train"]) | set(used["val"])) & set(study["test"])
        assert set(used["val"]) == set(study["val"])  # scored on the study's own validation subjects


def test_tuning_choice_keeps_the_current_value_within_the_tolerance():
    tuning = _tuning_module()
    rows = [  # option, value, current, validation Dice, Dice on the widest slice set
        ("log_offset", "0.001", True, 0.900, None), ("log_offset", "0.01", False, 0.903, None),  # a tie
        ("placement_score", "dice", True, 0.900, None), ("placement_score", "ncc", False, 0.920, None),
        # min_brain_fraction is decided on the common (widest) slices, not on each value's own slices
        ("min_brain_fraction", "0.5", False, 0.880, 0.880), ("min_brain_fraction", "0.6", True, 0.910, 0.870),
        ("min_brain_fraction", "0.7", False, 0.930, 0.850),
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=["option", "value", "current", "validation_dice", "dice_on_widest"])
    chosen = tuning.mark_choices(table, tolerance=0.005).query("chosen").set_index("option")["value"]
    assert chosen.to_dict() == {"log_offset": "0.001", "placement_score": "ncc", "min_brain_fraction": "0.5"}


def test_tuning_reads_no_test_subject_and_scores_as_the_study_would(tmp_path):
    """The test subjects' files are missing, so reading any of them would fail; the score of the current
    options is the best validation Dice of the study's own tuning grid (threshold_sensitivity.tsv)."""
    tuning = _tuning_module()
    rng = np.random.default_rng(0)
    subjects = [_toy_subject(tmp_path, f"sub-{i:02d}", rng) for i in range(10)]
    options = {
        **{k: v.default for k, v in inspect.signature(run_masking_study).parameters.items() if v.default is not v.empty},
        **TOY_OPTIONS, **TOY_TUNING, "max_epochs": 3, "min_epochs": 1,
    }  # fmt: skip
    for key in ("seed", "figures", "figure_dir", "device", "threads", "lognormal_sample", "n_example_slices"):
        options.pop(key)
    study = run_masking_study(subjects, tmp_path / "study", seed=0, figures=False, **options)
    test_ids = set(study["splits"].query("set == 'test'").subject)
    hidden = [{**r, "image": tmp_path / "absent.nii.gz"} if r["subject"] in test_ids else r for r in subjects]
    candidates = {"saliency_target": ["brain_logits", "brain_softmax"]}
    models = tmp_path / "models"
    table = tuning.score_options(hidden, options, seed=0, candidates=candidates, log=lambda m: None, model_dir=models)
    # a second call reuses the stored segmenter and scores the same
    messages: list[str] = []
    again = tuning.score_options(hidden, options, seed=0, candidates=candidates, log=messages.append, model_dir=models)
    assert any("reused" in m for m in messages) and not any("trained" in m for m in messages)
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), table.drop(columns="seconds"))
    assert list(table.value) == ["brain_logits", "brain_softmax"]
    assert list(table.current) == [True, False] and table.chosen.sum() == 1
    assert (table.n_subjects == len(study["splits"].query("set == 'val'"))).all()
    grid = pd.read_csv(tmp_path / "study" / "threshold_sensitivity.tsv", sep="\t").query("set == 'validation'")
    current = table[table.current].iloc[0]
    assert current.validation_dice == pytest.approx(grid.brain_mask_dice.max())
    assert (current.threshold_centre, current.area_weight) == tuple(
        grid.loc[grid.selected, ["threshold_centre", "area_weight"]].iloc[0]
    )


def test_study_keyword_defaults_agree_with_config_yaml():
    """Whoever calls run_masking_study without the workflow gets the shipped config's choices."""
    import yaml

    from conftest import REPO

    options = yaml.safe_load((REPO / "config.yaml").read_text())["studies"]["masking"]
    params = inspect.signature(run_masking_study).parameters
    for key, value in options.items():
        if key in ("enabled", "training", "reference_labels"):  # reference labels: read by the workflow's rule
            continue
        default = params[key].default
        if isinstance(value, list):
            assert [float(v) for v in default] == [float(v) for v in value], key
        else:
            assert default == value and type(default) is type(value), key

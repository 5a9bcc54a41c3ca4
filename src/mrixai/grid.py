"""Sample-grid geometry: centred crop or pad, block averaging, and the affine of the result.

The volume stores (:mod:`mrixai.learn.store`) and the atlas on the sample grid
(:mod:`mrixai.explain.regions`) both use these, so maps and regions line up voxel for voxel.
Only numpy is needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def crop_offset(image_shape: Sequence[int], shape: Sequence[int]) -> tuple[int, ...]:
    """Start index (negative = padding) of a centred crop of ``shape`` from ``image_shape``."""
    return tuple((int(i) - int(s)) // 2 for i, s in zip(image_shape, shape))


def crop_or_pad(data: np.ndarray, shape: Sequence[int], offset: Sequence[int]) -> np.ndarray:
    """The box of ``shape`` starting at ``offset`` (zeros where it leaves ``data``)."""
    out = np.zeros(tuple(shape), dtype=np.float32)
    src, dst = [], []
    for o, s, n in zip(offset, shape, data.shape):
        lo, hi = max(o, 0), min(o + s, n)
        src.append(slice(lo, hi))
        dst.append(slice(lo - o, hi - o))
    out[tuple(dst)] = data[tuple(src)]
    return out


def block_mean(data: np.ndarray, factor: int) -> np.ndarray:
    """Average non-overlapping ``factor``^3 blocks."""
    if factor == 1:
        return data
    d, h, w = (s // factor for s in data.shape)
    return data[: d * factor, : h * factor, : w * factor].reshape(d, factor, h, factor, w, factor).mean((1, 3, 5))


def on_sample_grid(data: np.ndarray, shape: Sequence[int], offset: Sequence[int], downsample: int) -> np.ndarray:
    """A template-grid array on a sample grid: the box of ``shape`` at ``offset``, block-averaged (float32).

    For a binary mask this is the fraction of each sample voxel inside it.
    """
    return block_mean(crop_or_pad(np.asarray(data, dtype=np.float32), shape, offset), downsample)


def sample_grid_affine(affine: np.ndarray, offset: Sequence[int], downsample: int) -> np.ndarray:
    """Affine of the sample grid (crop then block-average) given the template grid's affine."""
    shift = np.eye(4)
    shift[:3, 3] = offset
    scale = np.diag([downsample, downsample, downsample, 1.0])
    # Block centres sit half a (downsample - 1) voxel in from the block's first voxel.
    centre = np.eye(4)
    centre[:3, 3] = (downsample - 1) / 2.0
    return affine @ shift @ centre @ scale

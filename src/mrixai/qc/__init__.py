"""Quality control of the preprocessing, one module per concern.

- :mod:`mrixai.qc.volumes`: loading images (RAS, float32), grids, bounding boxes, foreground.
- :mod:`mrixai.qc.canvas`: colours, the Agg figure and deterministic palette PNG output.
- :mod:`mrixai.qc.montage`: per-subject montages (skull strip, tissues, registration) and
  :func:`~mrixai.qc.montage.run_subject_qc`, every QC output of one subject.
- :mod:`mrixai.qc.metrics`: per-subject metrics (brain volume, tissue fractions, Dice and
  correlation of each registration arm with the template).
- :mod:`mrixai.qc.group`: the group table with robust z-scores, outlier flags and its plot.

Slicing and intensity windowing are shared with the figures: :mod:`mrixai.display`.
Import from the submodules (``from mrixai.qc.metrics import dice``); this package's ``__init__``
imports nothing, so a rule lists only the modules its script uses.
"""

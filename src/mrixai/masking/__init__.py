"""Saliency-guided masking: a 2D U-Net tissue segmenter whose saliency places a brain mask.

A network trained on skull-stripped (masked) axial slices fails on raw slices that still hold
skull and scalp. The study computes the guided-backprop saliency of the segmentation output on
the raw slice, enhances it (linear stretch, log compression, z-scoring, smooth threshold),
places a brain-mask template on it by 2D cross-correlation, removes the background with the
placed mask and segments again. Modules by concern:

:mod:`~mrixai.masking.slices`     axial slice extraction, slice selection and normalisation
:mod:`~mrixai.masking.unet`       the 2D U-Net
:mod:`~mrixai.masking.train`      Dice loss, SGD with momentum, early stopping on validation Dice
:mod:`~mrixai.masking.saliency`   guided backprop of the brain score, enhancement, smooth threshold
:mod:`~mrixai.masking.placement`  mask template from training masks, cross-correlation placement
:mod:`~mrixai.masking.metrics`    per-class accuracy / specificity / sensitivity / Dice, log-normal fit
:mod:`~mrixai.masking.figures`    example slices per case, log-saliency histogram
:mod:`~mrixai.masking.study`      :func:`run_masking_study`, the whole study with tables and figures
"""

"""Explanations of the CNN classifiers: attribution (relevance / saliency) maps and their checks.

:mod:`mrixai.explain.attribution` computes voxel-wise attribution maps with LRP (epsilon and
alpha-beta rules, via zennit), guided backpropagation, gradient x input, integrated gradients
(captum), batched occlusion and Grad-CAM, plus the batch-norm folding LRP needs and a rank
correlation for model-randomisation sanity checks.
"""

"""The embedded synthetic cohort: raw-looking whole-head T1w/T2w scans with planted atrophy.

Everything comes from files inside pip packages, so the default dataset is generated offline.
One module per concern:

1. :mod:`mrixai.synthetic.cohort`: :func:`~mrixai.synthetic.cohort.make_participants` draws the
   participants table (CN/AD, age, sex, severity); argument checks and per-subject seeds.
2. :mod:`mrixai.synthetic.head`: :func:`~mrixai.synthetic.head.build_head_model`, once per cohort,
   makes the head the subjects are drawn from (ROBEX's head atlas around the MNI template's
   tissue priors, so the tissue truth is known voxel by voxel).
3. :mod:`mrixai.synthetic.deformation`: velocity fields (smooth random anatomy, calibrated
   regional atrophy), their exponential, the pose and upsampling.
4. :mod:`mrixai.synthetic.generation`: :func:`~mrixai.synthetic.generation.generate_subject`
   draws one subject (pose, anatomy, atrophy, bias field, Rician noise) with its native truth.
5. :mod:`mrixai.synthetic.truth`: the template-space truth of the planted effect
   (:func:`~mrixai.synthetic.truth.planted_regions_mask`,
   :func:`~mrixai.synthetic.truth.planted_image_change`,
   :func:`~mrixai.synthetic.truth.write_effect_mask`).

Import from the submodules; this package's ``__init__`` imports nothing, so a rule lists only the
modules its script uses.
"""

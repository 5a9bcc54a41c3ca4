# Input functions of preprocessing, registration and QC (per unit and per registration arm).


def probsegs(prefix):
    """Tissue probability map paths for a path prefix, keyed by tissue."""
    return {t: f"{prefix}_label-{t}_probseg.nii.gz" for t in TISSUES}


def arm_transforms(wildcards):
    """Transform files that map the template into one subject, for every configured arm."""
    base = f"results/preproc/sub-{wildcards.subject}/anat/sub-{wildcards.subject}"
    xfm = f"{base}_from-{CONTRAST}_to-template_mode-image"
    files = {}
    if "none" in ARMS:
        files["centre"] = f"{xfm}_reg-none_xfm.mat"
    if "linear" in ARMS or "syn" in ARMS:
        files["affine"] = f"{xfm}_reg-linear_xfm.mat"
    if "syn" in ARMS:
        files["warp"] = f"{xfm}_reg-syn_xfm.nii.gz"
    return files


def arm_transform(wildcards):
    """Transform files that map the template into one subject for the arm ``wildcards.arm`` only."""
    files = arm_transforms(wildcards)
    keep = {"none": ["centre"], "linear": ["affine"], "syn": ["affine", "warp"]}
    return {k: files[k] for k in keep[wildcards.arm]}


def none_arm_output():
    """The none arm's transform as a named output, when that arm is configured."""
    xfm = f"{PRE}_from-{CONTRAST}_to-template_mode-image_reg-none_xfm.mat"
    return {"centre": xfm} if "none" in ARMS else {}


def warped(suffix):
    """Template-space outputs of one kind, one per configured arm (subject left as a wildcard)."""
    return expand(
        f"{PRE}_space-template_reg-{{arm}}_{suffix}.nii.gz",
        arm=ARMS,
        allow_missing=True,
    )


def subject_outputs(unit):
    """Every preprocessing and QC file of one unit."""
    pre = PRE.format(subject=unit)
    qc = QC.format(subject=unit)
    out = [
        f"{pre}_desc-n4_{CONTRAST}.nii.gz",
        f"{pre}_desc-brain_mask.nii.gz",
        f"{pre}_dseg.nii.gz",
        *probsegs(pre).values(),
        f"{qc}_desc-skullstrip_qc.png",
        f"{qc}_desc-tissue_qc.png",
    ]
    for arm in ARMS:
        tpl = f"{pre}_space-template_reg-{arm}"
        out += [
            f"{tpl}_desc-brain_{CONTRAST}.nii.gz",
            f"{tpl}_dseg.nii.gz",
            f"{qc}_reg-{arm}_desc-registration_qc.png",
        ]
    return out


def qc_metrics(wildcards):
    """Per-subject QC metric files of all accepted units."""
    return [f"{QC.format(subject=u)}_qc.json" for u in accepted_units()]


def template_images(arm):
    """Every unit's template-space brain image of one arm."""
    return [
        f"{PRE.format(subject=u)}_space-template_reg-{arm}_desc-brain_{CONTRAST}.nii.gz"
        for u in UNITS
    ]


def template_dsegs(arm):
    """Every unit's template-space tissue map of one arm."""
    return [
        f"{PRE.format(subject=u)}_space-template_reg-{arm}_dseg.nii.gz" for u in UNITS
    ]


def volume_transforms(wildcards):
    """Native->template transforms whose inverse carries the atlas into a unit's native space."""
    files = arm_transforms(wildcards)
    if "warp" in files:
        return {
            "affine": files["affine"],
            "inverse_warp": files["warp"].replace(
                f"from-{CONTRAST}_to-template", f"from-template_to-{CONTRAST}"
            ),
        }
    if "affine" in files:
        return {"affine": files["affine"]}
    raise ValueError(
        "regional volumes need the linear or syn registration arm; registration is "
        f"{ARMS}"
    )


def region_volume_tables(wildcards):
    """Native regional volume tables of every unit."""
    return {
        u: f"{PRE.format(subject=u)}_atlas-Neuromorphometrics_morph.tsv" for u in UNITS
    }

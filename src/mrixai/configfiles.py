"""How the workflow reads its stacked config files (used while planning, in the Snakemake process)."""

from __future__ import annotations

from pathlib import Path


def replace_label_groups(config: dict, configfiles) -> dict | None:
    """Give ``config`` the ``label.groups`` of the last of ``configfiles`` that names groups.

    Snakemake merges stacked config files key by key, so groups of an earlier file (the shipped
    config.yaml's CN and AD) would stay beside those of a later one (young and old). The groups
    are one choice, not a dictionary to merge: the last file that sets them decides. Returns the
    groups taken (None, and ``config`` unchanged, when no file names any).
    """
    import yaml

    groups = None
    for path in configfiles:
        path = Path(path)
        if not path.is_file():
            continue
        data = yaml.safe_load(path.read_text()) or {}
        label = data.get("label") if isinstance(data, dict) else None
        if isinstance(label, dict) and isinstance(label.get("groups"), dict):
            groups = dict(label["groups"])
    if groups is not None and isinstance(config.get("label"), dict):
        config["label"]["groups"] = groups
    return groups

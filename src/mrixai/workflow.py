"""Glue shared by the workflow's scripts: logging to the rule's log file, errors included."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def setup_logging(log_path: str | Path, level: int = logging.INFO) -> logging.Logger:
    """Send logging to ``log_path`` (the rule's ``log:``) and to stderr; log uncaught errors too.

    The exception hook writes the full traceback to the log and a one-line message to stderr, so
    the console names the problem and the log keeps the detail.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    file_handler = logging.FileHandler(log_path, mode="w")
    file_handler.setFormatter(fmt)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    console.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.handlers[:] = [file_handler, console]
    root.setLevel(level)
    logging.captureWarnings(True)

    def hook(exc_type, exc, tb):
        root.error("%s: %s", exc_type.__name__, exc, exc_info=(exc_type, exc, tb))

    sys.excepthook = hook
    return logging.getLogger("mrixai")


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

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

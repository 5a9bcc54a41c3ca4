"""Which code made an output: the git commit and remote of the workflow checkout (standard library
only, so any rule's environment can import it)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def _git(directory: str | Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def code_commit(directory: str | Path) -> str | None:
    """The git commit of the workflow code in ``directory``, or None outside a git checkout."""
    commit = _git(directory, "rev-parse", "HEAD")
    return commit if commit and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def code_url(directory: str | Path) -> str | None:
    """The URL of the workflow checkout's ``origin`` remote, or None (no remote, no checkout)."""
    return _git(directory, "config", "--get", "remote.origin.url")

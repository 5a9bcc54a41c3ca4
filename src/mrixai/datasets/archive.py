"""Reading raw-data archives member by member, with damage reported against the archive.

:func:`read_archive` streams a tar archive (plain or compressed) once, in order, hands each
regular file to a callback, and raises :class:`ArchiveError` naming the archive when anything is wrong with it: not an archive, a
damaged compressed stream, a member cut short, or an archive that ends without tar's
end-of-archive marker (tar stops silently when a download was cut at a member boundary; the
marker check notices it).
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

# Errors the tar and decompression modules raise on damaged input.
_DAMAGE = (tarfile.TarError, EOFError, zlib.error, OSError, ValueError)
_END_MARKER = 2 * tarfile.BLOCKSIZE


class ConversionError(ValueError):
    """A dataset cannot be converted; the message names the file concerned."""


class ArchiveError(ConversionError):
    """A raw-data archive is damaged or not what it should be; the message names it."""


def read_archive(path: str | Path, handle: Callable[[str, IO[bytes]], None]) -> None:
    """Call ``handle(member name, readable file)`` for every regular file of the tar archive ``path``.

    The file object is valid only during the call. A read error inside ``handle`` (a member cut
    short) is reported as :class:`ArchiveError` like any other damage; a
    :class:`ConversionError` that ``handle`` raises passes through unchanged.
    """
    path = Path(path)
    if not path.is_file():
        raise ArchiveError(f"{path}: archive not found")
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.isfile():
                    handle(member.name, tar.extractfile(member))
            _check_end(tar, path)
    except ConversionError:
        raise
    except _DAMAGE as exc:
        raise ArchiveError(f"{path}: corrupted or truncated archive ({type(exc).__name__}: {exc})") from exc


def _check_end(tar: tarfile.TarFile, path: Path) -> None:
    """Raise unless the archive ends with the two zero blocks tar writes after its last member."""
    # tarfile stops at the first header it cannot read and leaves ``offset`` there; the block it
    # read is still in the position of the underlying stream.
    read_already = tar.fileobj.tell() - tar.offset
    rest = tar.fileobj.read()
    tail = read_already + len(rest)
    if tail < _END_MARKER or rest.strip(b"\0"):
        raise ArchiveError(
            f"{path}: truncated archive (it ends {tail} bytes after its last complete member, without "
            "tar's end-of-archive marker); download it again"
        )


def copy_member(fileobj: IO[bytes], dest: Path, chunk: int = 1 << 20) -> None:
    """Copy a member's bytes to ``dest`` (parents created)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        for block in iter(lambda: fileobj.read(chunk), b""):
            out.write(block)

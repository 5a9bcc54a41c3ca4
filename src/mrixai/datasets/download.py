"""Fetch raw public data: resumable, retried, checksummed, with a progress bar in the log.

:func:`fetch` copies one file from an ``http(s)://`` URL, a ``file://`` URL or a plain local path
to ``dest``. Bytes go to ``<dest>.part`` first; an interrupted transfer (a dropped connection, a
killed job) leaves that file behind, and the next attempt asks the server only for the rest
(HTTP ``Range``) or, for a local source, seeks past what was copied. Transient failures
(connection errors, timeouts, HTTP 429 and 5xx, a body shorter than announced) are retried
with exponential backoff; permanent ones (HTTP 4xx, a missing local file) fail at once. When
complete, the sha256 is computed; it must equal the configured checksum if one is given (a
mismatch deletes the ``.part`` file, so that the next run starts afresh), and it is logged and
written beside the file as ``<dest>.sha256`` either way. Only then is ``.part`` renamed to
``dest``, so ``dest`` exists only when it is complete.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests
from tqdm import tqdm

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")


class DownloadError(RuntimeError):
    """A file could not be fetched or failed its checksum; the message names the URL and file."""


class _Transient(Exception):
    """A failure worth another attempt (the partial file is kept and resumed)."""


def local_source(url: str) -> Path | None:
    """The local path of a ``file://`` URL or a plain path; None for an ``http(s)://`` URL."""
    parsed = urlparse(str(url))
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter: a Windows drive
        raise ValueError(f"unsupported URL scheme {parsed.scheme!r} in {url!r}: use http(s)://, file:// or a path")
    return Path(url).expanduser()


def file_name(url: str) -> str:
    """The file name a URL or path points to (its last path component)."""
    local = local_source(url)
    name = local.name if local is not None else Path(unquote(urlparse(url).path)).name
    if not name:
        raise ValueError(f"cannot tell the file name of {url!r}: it must end in a file name")
    return name


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _LogWriter:
    """A file-like object for tqdm that sends each progress line to the log."""

    def write(self, text: str) -> None:
        text = text.strip("\r\n ")
        if text:
            log.info("%s", text)

    def flush(self) -> None:
        pass


def _progress(name: str, total: int | None, initial: int, interval_s: float) -> tqdm:
    return tqdm(
        total=total, initial=initial, desc=name, unit="B", unit_scale=True, unit_divisor=1024,
        file=_LogWriter(), mininterval=interval_s, maxinterval=max(interval_s, 10.0), ascii=True,
        dynamic_ncols=False, ncols=100,
    )


def _copy_local(src: Path, part: Path, interval_s: float) -> None:
    if not src.is_file():
        raise DownloadError(f"{src}: no such file (a local source must be an existing file)")
    total = src.stat().st_size
    have = part.stat().st_size if part.exists() else 0
    if have > total:
        log.warning("%s is larger than its source %s; starting again", part, src)
        have = 0
    if have:
        log.info("resuming %s at byte %d of %d", src, have, total)
    with open(src, "rb") as fin, open(part, "ab" if have else "wb") as fout:
        fin.seek(have)
        with _progress(src.name, total, have, interval_s) as bar:
            for chunk in iter(lambda: fin.read(CHUNK_BYTES), b""):
                fout.write(chunk)
                bar.update(len(chunk))
    if part.stat().st_size != total:
        raise _Transient(f"copied {part.stat().st_size} of {total} bytes")


def _content_range_total(value: str | None) -> int | None:
    match = re.match(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+)", value or "")
    return int(match.group(2)) if match else None


def _http_get(session: requests.Session, url: str, part: Path, timeout_s: float, interval_s: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    # identity: the bytes on disk must be the file's, not a transfer-decoded version of it
    headers = {"Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    with session.get(url, headers=headers, stream=True, timeout=timeout_s) as resp:
        code = resp.status_code
        if code == 416 and have:
            total = _content_range_total(resp.headers.get("Content-Range"))
            if total == have:
                return  # the partial file already holds everything
            part.unlink()
            raise _Transient(f"the server refused to resume at byte {have}; starting again")
        if code == 429 or code >= 500:
            raise _Transient(f"HTTP {code} {resp.reason}")
        if code >= 400:
            raise DownloadError(f"{url}: HTTP {code} {resp.reason}")
        if code == 206:
            start = re.match(r"bytes\s+(\d+)-", resp.headers.get("Content-Range", ""))
            if not start or int(start.group(1)) != have:
                part.unlink()
                raise _Transient(f"the server resumed at the wrong offset ({resp.headers.get('Content-Range')})")
            total = _content_range_total(resp.headers.get("Content-Range"))
            log.info("resuming %s at byte %d of %s", url, have, total)
            mode = "ab"
        else:
            if have:
                log.warning("%s does not support resuming (HTTP %d); downloading it whole again", url, code)
            have, mode = 0, "wb"
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        with open(part, mode) as f, _progress(file_name(url), total, have, interval_s) as bar:
            for chunk in resp.iter_content(CHUNK_BYTES):
                f.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size != total:
        raise _Transient(f"the transfer ended at byte {size} of {total}")


def fetch(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    retries: int = 5,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
    progress_interval_s: float = 30.0,
    session: requests.Session | None = None,
) -> str:
    """Download ``url`` to ``dest`` (resuming ``<dest>.part``); return the file's sha256.

    Args:
        url: ``http(s)://`` URL, ``file://`` URL or local path.
        dest: where the complete file goes.
        sha256: expected hex digest, or None to compute, log and record it only.
        retries: attempts before giving up (each resumes where the last one stopped).
        backoff_s: wait before the second attempt; it doubles after each further failure.
        timeout_s: connect and read timeout of one HTTP request.
        progress_interval_s: at most one progress line per this many seconds in the log.
        session: a ``requests.Session`` to reuse (tests pass one), else a new one.

    Raises:
        DownloadError: the file cannot be fetched, or its checksum differs from ``sha256``.
    """
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        raise ValueError(f"retries must be a positive integer, got {retries!r}")
    for name, value in (("backoff_s", backoff_s), ("timeout_s", timeout_s), ("progress_interval_s", progress_interval_s)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    if sha256 is not None and not _SHA256_RE.match(str(sha256)):
        raise ValueError(f"sha256 of {url} must be 64 hex digits, got {sha256!r}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    local = local_source(url)
    own_session = session is None and local is None
    if own_session:
        session = requests.Session()
    try:
        for attempt in range(1, retries + 1):
            try:
                if local is not None:
                    _copy_local(local, part, progress_interval_s)
                else:
                    _http_get(session, url, part, timeout_s, progress_interval_s)
                break
            except DownloadError:
                raise
            except (_Transient, requests.RequestException, OSError) as exc:
                if attempt == retries:
                    kept = f"; {part} is kept and the next run resumes it" if part.exists() else ""
                    raise DownloadError(
                        f"{url}: download to {dest} failed after {retries} attempts: {exc}{kept}"
                    ) from exc
                wait = backoff_s * 2 ** (attempt - 1)
                log.warning("%s: attempt %d of %d failed (%s); retrying in %.1f s", url, attempt, retries, exc, wait)
                time.sleep(wait)
    finally:
        if own_session:
            session.close()
    digest = sha256_of(part)
    if sha256 is not None and digest != sha256.lower():
        part.unlink()
        raise DownloadError(
            f"{url}: the downloaded file {dest} has sha256 {digest}, but {sha256.lower()} is expected; "
            "it was deleted, so the next run downloads it again (or correct the configured checksum)"
        )
    os.replace(part, dest)
    dest.with_name(dest.name + ".sha256").write_text(f"{digest}  {dest.name}\n")
    if sha256 is None:
        log.info("%s: sha256 %s (no checksum configured; recorded in %s.sha256)", dest, digest, dest.name)
    else:
        log.info("%s: sha256 %s matches the configured checksum", dest, digest)
    return digest

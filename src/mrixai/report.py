"""Checks of the Snakemake HTML report: which figures it embeds, their captions, and a screenshot.

``snakemake --report report.html`` writes one self-contained HTML file (Snakemake 8/9): a React app
whose data sit in inline scripts, ``<script id="results"> var results = {...}; </script>`` (one
entry per ``report()``-marked file, keyed by its path, with ``name``, ``caption`` (HTML),
``mime_type`` and the file itself as a base64 ``data_uri``) and ``<script id="categories">
var categories = {category: {subcategory: [keys]}}; </script>``. The functions here read those
JSON objects, so a test can check that every expected figure reached the report.

:func:`screenshot_report` opens the report in headless Chromium (Debian package ``chromium``) and
saves a PNG. The app renders in headless mode (the landing page shows the navigation and the rule
graph); ``click`` names items to click in turn (a category, then a file name, whose "eye" button
is pressed), so the screenshot can show a figure page instead of the landing page.
"""

from __future__ import annotations

import html
import json
import logging
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mrixai.io import atomic_path

log = logging.getLogger(__name__)

#: Where Debian's ``chromium`` package puts the browser.
DEFAULT_CHROMIUM = "/usr/bin/chromium"

#: Flags that keep headless Chromium offline, quiet and free of any user profile.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)

#: Mime types counted as figures by :func:`report_figures`.
FIGURE_MIME_PREFIXES = ("image/", "application/pdf")

# Clicks through the report app: for each text, find a leaf element showing exactly that text;
# in a table row press its "eye" (view) button, otherwise click the enclosing link or button.
# A text not found after a few tries is skipped (the app leaves out levels it does not need,
# e.g. the category list when there is only one category).
_CLICK_SCRIPT = """<script>
(function () {
  var steps = %s, delay = %d, maxTries = %d, i = 0, tries = 0;
  function leaf(t) {
    return Array.prototype.filter.call(document.querySelectorAll("a,button,span,td,li,div,p"),
      function (e) { return e.children.length === 0 && e.textContent.trim() === t; })[0];
  }
  function step(t) {
    var el = leaf(t);
    if (!el) { return false; }
    var row = el.closest("tr");
    var eye = row ? row.querySelector('a[iconname="eye"]') : null;
    (eye || el.closest("a,button") || el).click();
    return true;
  }
  function next() {
    if (i >= steps.length) { return; }
    tries++;
    if (step(steps[i]) || tries >= maxTries) { i++; tries = 0; }
    setTimeout(next, delay);
  }
  window.addEventListener("load", function () { setTimeout(next, delay); });
})();
</script>"""

#: Tries (one per ``click_delay_ms``) before a text to click is given up.
CLICK_TRIES = 4


def _read_var(report_html: str | Path, var: str) -> object:
    """The JSON value of ``var`` in the report's ``<script id="<var>">var <var> = ...`` data script."""
    path = Path(report_html)
    if not path.is_file():
        raise FileNotFoundError(f"report not found: {path}")
    text = path.read_text(encoding="utf-8", errors="replace")
    name = re.escape(var)
    match = re.search(rf"<script[^>]*\bid=[\"']{name}[\"'][^>]*>\s*var\s+{name}\s*=\s*", text)
    if match is None:
        raise ValueError(f"{path} has no 'var {var} = ...' script: not a Snakemake (>= 8) HTML report?")
    try:
        value, _ = json.JSONDecoder().raw_decode(text, match.end())
    except json.JSONDecodeError as err:
        raise ValueError(f"cannot parse 'var {var}' in {path}: {err}") from err
    return value


def report_results(report_html: str | Path) -> dict[str, dict]:
    """Every file embedded in the report: ``{key: entry}`` with ``name``, ``caption``, ``mime_type``..."""
    results = _read_var(report_html, "results")
    if not isinstance(results, dict):
        raise ValueError(f"'results' in {report_html} is a {type(results).__name__}, expected an object")
    return results


def report_figures(report_html: str | Path, *, mime_prefixes: Sequence[str] = FIGURE_MIME_PREFIXES) -> list[str]:
    """File names (basenames, in report order) of the figures embedded in a Snakemake HTML report.

    A figure is an entry whose mime type starts with one of ``mime_prefixes`` (PNG/SVG/... images
    and PDFs by default; pass ``("",)`` for every embedded file).
    """
    if isinstance(mime_prefixes, str) or not mime_prefixes:
        raise ValueError(f"mime_prefixes must be a non-empty sequence of strings, got {mime_prefixes!r}")
    names = []
    for key, entry in report_results(report_html).items():
        mime = str(entry.get("mime_type") or "")
        if any(mime.startswith(prefix) for prefix in mime_prefixes):
            names.append(Path(str(entry.get("name") or key)).name)
    log.info("%s embeds %d figure(s)", report_html, len(names))
    return names


def _html_to_text(fragment: str) -> str:
    text = re.sub(r"<[^>]+>", " ", fragment)
    text = re.sub(r"\s+", " ", html.unescape(text)).strip()
    return re.sub(r"\s+([.,;:!?)])", r"\1", text)


def report_captions(report_html: str | Path) -> dict[str, str]:
    """``{file name: caption as plain text}`` for every file embedded in the report."""
    return {
        Path(str(entry.get("name") or key)).name: _html_to_text(str(entry.get("caption") or ""))
        for key, entry in report_results(report_html).items()
    }


def report_categories(report_html: str | Path) -> dict[str, dict[str, list[str]]]:
    """``{category: {subcategory: [file names]}}`` as the report's sidebar groups them."""
    categories = _read_var(report_html, "categories")
    if not isinstance(categories, dict):
        raise ValueError(f"'categories' in {report_html} is not an object")
    return {
        str(cat): {str(sub): [Path(str(k)).name for k in keys] for sub, keys in subs.items()}
        for cat, subs in categories.items()
    }


def find_chromium(chromium: str | None = None) -> str:
    """The Chromium executable: ``chromium`` if given, else ``/usr/bin/chromium`` or ``chromium`` on PATH."""
    if chromium is not None:
        found = shutil.which(chromium)
        if found is None:
            raise FileNotFoundError(f"chromium executable not found: {chromium!r}")
        return found
    if Path(DEFAULT_CHROMIUM).is_file():
        return DEFAULT_CHROMIUM
    found = shutil.which("chromium")
    if found is None:
        raise FileNotFoundError(
            "chromium not found (looked for /usr/bin/chromium and on PATH): "
            "install it with `apt-get install chromium`"
        )
    return found


def is_blank(png: str | Path) -> bool:
    """True if the PNG has a single colour (zero pixel variance) or cannot hold an image."""
    from PIL import Image

    with Image.open(png) as img:
        pixels = np.asarray(img.convert("RGB"), dtype=np.float32)
    return pixels.size == 0 or float(pixels.std()) == 0.0


def figure_clicks(report_html: str | Path, name: str) -> list[str]:
    """The texts to click in the report app to show the embedded file ``name``.

    ``name`` is a basename (``mean_maps.png``) or the path the report lists
    (``results/figures/mean_maps.png``); the app shows the path, so that is what is clicked.
    """
    categories = _read_var(report_html, "categories")
    if not isinstance(categories, dict):
        raise ValueError(f"'categories' in {report_html} is not an object")
    for category, subcategories in categories.items():
        for subcategory, keys in subcategories.items():
            for key in keys:
                if name in (key, Path(key).name):
                    return ["Results", str(category), str(subcategory), str(key)]
    embedded = report_figures(report_html, mime_prefixes=("",))
    raise ValueError(f"{name!r} is not embedded in {report_html}; it has {embedded}")


def _with_clicks(report_html: Path, click: Sequence[str], workdir: Path, delay_ms: int) -> Path:
    text = report_html.read_text(encoding="utf-8", errors="replace")
    end = text.rfind("</body>")  # the last one: vega-embed's code holds a '</body>' string too
    if end == -1:
        raise ValueError(f"{report_html} has no </body>")
    script = _CLICK_SCRIPT % (json.dumps(list(click)), delay_ms, CLICK_TRIES)
    copy = workdir / report_html.name
    copy.write_text(text[:end] + script + text[end:], encoding="utf-8")
    return copy


def screenshot_report(
    report_html: str | Path,
    out_png: str | Path,
    *,
    chromium: str | None = None,
    width: int = 1400,
    height: int = 1000,
    timeout_s: float = 120,
    virtual_time_ms: int = 10000,
    show: str | None = None,
    click: Sequence[str] = (),
    click_delay_ms: int = 500,
) -> Path:
    """Screenshot a (Snakemake) HTML report with headless Chromium; check the PNG is not blank.

    ``virtual_time_ms`` lets the page's scripts run for that much virtual time before the shot
    (``--virtual-time-budget``). ``show`` names an embedded figure (e.g. ``"mean_maps.png"``) to
    open before the shot (default: the landing page); ``click`` lists texts to click in turn
    instead (texts not found are skipped after a few tries).

    Raises FileNotFoundError if Chromium or the report is missing, RuntimeError if Chromium fails,
    times out, or writes no / a blank image.
    """
    report_html = Path(report_html).resolve()
    out_png = Path(out_png)
    if not report_html.is_file():
        raise FileNotFoundError(f"report not found: {report_html}")
    if out_png.suffix.lower() != ".png":
        raise ValueError(f"screenshot must be a .png path, got {out_png}")
    for name, value in (("width", width), ("height", height)):
        if int(value) < 100:
            raise ValueError(f"{name} must be >= 100 pixels, got {value}")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    if virtual_time_ms < 0 or click_delay_ms < 0:
        raise ValueError(f"virtual_time_ms and click_delay_ms must be >= 0, got {virtual_time_ms}, {click_delay_ms}")
    if isinstance(click, str):
        raise ValueError(f"click must be a sequence of texts, not one string: {click!r}")
    if show is not None:
        if click:
            raise ValueError(f"give show or click, not both (show={show!r}, click={list(click)!r})")
        click = figure_clicks(report_html, show)
    exe = find_chromium(chromium)
    with tempfile.TemporaryDirectory(prefix="mrixai-chromium-") as tmp:
        tmp = Path(tmp)
        page = _with_clicks(report_html, click, tmp, click_delay_ms) if click else report_html
        shot = tmp / "screenshot.png"
        cmd = [
            exe,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp / 'profile'}",
            f"--window-size={int(width)},{int(height)}",
            f"--screenshot={shot}",
        ]
        if virtual_time_ms:
            cmd.append(f"--virtual-time-budget={int(virtual_time_ms)}")
        cmd.append(page.as_uri())
        log.info("screenshot: %s", " ".join(cmd))
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f"chromium took longer than {timeout_s} s on {report_html}") from err
        if proc.returncode != 0 or not shot.is_file():
            raise RuntimeError(
                f"chromium failed (exit {proc.returncode}) on {report_html}; no screenshot.\n{proc.stderr[-2000:]}"
            )
        if is_blank(shot):
            raise RuntimeError(f"the screenshot of {report_html} is blank (one colour)")
        with atomic_path(out_png) as target:
            shutil.copyfile(shot, target)
    log.info("wrote %s", out_png)
    return out_png

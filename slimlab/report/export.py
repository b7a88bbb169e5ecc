"""Report figures as files for papers: SVG and PDF, drawn by kaleido in Debian's Chromium.

kaleido 1.x drives a Chromium through choreographer. Its own browser download
(`kaleido.get_chrome`) does not work offline, so the browser is named explicitly: the
``path`` that kaleido passes on to choreographer's Browser. MathJax is turned off: kaleido
would fetch it from a CDN, and no report figure uses LaTeX.
"""

from __future__ import annotations

import difflib
import html
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import plotly.graph_objects as go

from slimlab.errors import SlimlabError

FORMATS = ("svg", "pdf", "png")
CHROMIUM = "/usr/bin/chromium"  # Debian's; scripts/setup.sh installs it
WIDTH_PX = 1100  # wide enough for the longest tick labels beside the bars
NAME_MAX_CHARS = 60
TIMEOUT_SECONDS = 180  # per figure: a 1,000-variant panel takes a while to lay out


def chromium() -> str:
    """The Chromium kaleido drives; a clear error naming the install command without one."""
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise SlimlabError("exporting figures needs Chromium, which kaleido drives to draw them: "
                           "apt-get install chromium (scripts/setup.sh installs it)")
    return found


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """The formats, lower-cased; an unknown one is refused before any work, with the valid ones."""
    chosen = tuple(f.lower().lstrip(".") for f in formats)
    for fmt in chosen:
        if fmt not in FORMATS:
            close = difflib.get_close_matches(fmt, FORMATS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SlimlabError(f"unknown figure format {fmt!r}{hint}; valid: {', '.join(FORMATS)}")
    if not chosen:
        raise SlimlabError(f"no figure format given; valid: {', '.join(FORMATS)}")
    return chosen


def file_stem(fig: go.Figure, index: int) -> str:
    """A safe file name from the figure's title: its number, then letters, digits, - and _ only
    (a title holds escaped workload names, which may hold anything)."""
    title = fig.layout.title.text or "figure"
    text = html.unescape(re.sub(r"<[^>]*>", " ", title))  # <br>, <sub>: plotly's markup
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:NAME_MAX_CHARS].rstrip("-")
    return f"{index + 1:02d}-{slug or 'figure'}"


def export_figures(figures: Sequence[go.Figure], out_dir: str | Path,
                   formats: Sequence[str] = ("svg", "pdf")) -> list[Path]:
    """Write each figure as ``NN-title.<format>`` in ``out_dir`` (created); returns the paths.

    Each figure keeps its own height (a 200-variant panel is tall) at WIDTH_PX wide."""
    import kaleido

    chosen = check_formats(formats)
    browser = chromium()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for index, fig in enumerate(figures):
        stem = file_stem(fig, index)
        height = fig.layout.height or 500
        for fmt in chosen:
            jobs.append({"fig": fig, "path": out_dir / f"{stem}.{fmt}",
                         "opts": {"format": fmt, "width": WIDTH_PX, "height": height}})
    # One browser for every file; errors are raised, not returned in a list.
    kaleido.write_fig_from_object_sync(jobs, kopts={"path": browser, "mathjax": False, "timeout": TIMEOUT_SECONDS},
                                       cancel_on_error=True)
    missing = [str(job["path"]) for job in jobs if not job["path"].is_file()]
    if missing:
        raise SlimlabError(f"kaleido wrote no file for: {', '.join(missing)}")
    return [job["path"] for job in jobs]

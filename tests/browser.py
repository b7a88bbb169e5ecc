"""Headless Chromium as a test helper: load a page offline, return the DOM after scripts ran.

Used to prove that a report renders (plotly drew its SVGs) and that hostile labels stay
text. scripts/setup.sh installs Chromium, so a test that needs it fails without it (never skips).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_SECONDS = 120


def chromium_path() -> str:
    """The Chromium binary to use; fails the calling test when there is none."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed (apt-get install chromium); `make setup` installs it",
                    pytrace=False)
    return found


def _argv(binary: str, profile_dir: str) -> list[str]:
    return [
        binary,
        "--headless",
        "--no-sandbox",  # tests may run as root in a container
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile_dir}",  # a fresh profile: no state leaks between runs
        # Virtual time lets plotly finish drawing without a wall-clock sleep.
        "--virtual-time-budget=15000",
    ]


def dump_dom(html_path: str | Path) -> str:
    """Load ``html_path`` in headless Chromium and return the serialized DOM after scripts."""
    binary = chromium_path()
    url = Path(html_path).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="slimlab-chromium-") as profile:
        result = subprocess.run(
            [*_argv(binary, profile), "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(
            f"chromium exited {result.returncode} for {url}: {result.stderr[-2000:]}"
        )
    return result.stdout


def screenshot(html_path: str | Path, png_path: str | Path, size: str = "1400,3000") -> Path:
    """Save a PNG of the rendered page (for looking at a report by eye)."""
    binary = chromium_path()
    with tempfile.TemporaryDirectory(prefix="slimlab-chromium-") as profile:
        subprocess.run(
            [
                *_argv(binary, profile),
                f"--screenshot={Path(png_path).resolve()}",
                f"--window-size={size}",
                Path(html_path).resolve().as_uri(),
            ],
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            check=True,
        )
    return Path(png_path)


class _PlotCounter(HTMLParser):
    """Counts .js-plotly-plot divs that contain at least one <svg class="main-svg">."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self._div_depth = 0
        # Depths (in open <div>s) of the plot divs we are inside, and whether each has an svg.
        self._open_plots: list[list] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "div":
            self._div_depth += 1
            if "js-plotly-plot" in classes:
                self._open_plots.append([self._div_depth, False])
        elif tag == "svg" and "main-svg" in classes and self._open_plots:
            self._open_plots[-1][1] = True

    def handle_endtag(self, tag: str) -> None:
        if tag != "div":
            return
        if self._open_plots and self._open_plots[-1][0] == self._div_depth:
            _, has_svg = self._open_plots.pop()
            self.count += has_svg
        self._div_depth -= 1


def count_rendered_plots(dom: str) -> int:
    """How many plotly plots actually drew (a plot div with an SVG inside)."""
    counter = _PlotCounter()
    counter.feed(dom)
    counter.close()
    return counter.count

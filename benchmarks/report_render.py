"""How long the HTML report of a large run takes to render, and how big the file is.

A run of N variants is synthesised (tests/report_synth.py: results and 30 samples per
variant, shaped like a real sweep's frames, with failures, an emulated target and
outliers), then rendered to one self-contained HTML file. The goals (issue 10): 1,000
variants in under 5 s, a file under 8 MB (plotly.js inlined takes about 4.6 MB of it).

Usage: python benchmarks/report_render.py [N ...]     (default: 1000)
Prints per N: render seconds (best of 3 and the first), file MB, and each as a ratio to its
goal (below 1.00 is within it); the largest parts of the file; and `slimlab report` of the
same run from disk in a fresh interpreter. The answers section (slimlab.report.answers) is
part of every render here, so its cost is included as soon as it has content.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the synthesiser

from report_synth import synthetic_run

from slimlab.report import render_report_html

GOAL_SECONDS = 5.0
GOAL_MB = 8.0
REPEATS = 3


def _parts(text: str) -> list[tuple[str, int]]:
    """The bytes of each figure's script and of the table, largest first."""
    parts = [(f"figure {i + 1}", len(m.group(0)))
             for i, m in enumerate(re.finditer(r"Plotly\.newPlot\(.*?\)\s*};?", text, re.DOTALL))]
    table = (re.search(r'<table class="results"[^>]*>.*?</table>', text, re.DOTALL)
             or re.search(r'<script type="application/gzip\+base64".*?</noscript>', text, re.DOTALL))
    if table:
        parts.append(("all-rows table", len(table.group(0))))
    library = re.search(r"/\*\*\s*\n?\s*\* plotly\.js v.*?</script>", text, re.DOTALL)
    if library:
        parts.append(("plotly.js", len(library.group(0))))
    return sorted(parts, key=lambda p: -p[1])


def main(sizes: list[int]) -> None:
    for n in sizes:
        df, samples, manifests = synthetic_run(n)
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            text = render_report_html(df, f"{n} variants", manifests, samples=samples)
            times.append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "report.html"
            path.write_text(text, encoding="utf-8")
            mb = path.stat().st_size / 1e6
        best = min(times)
        print(f"{n} variants ({df.height} rows, {samples.height} samples): render {best:.2f} s best of {REPEATS} "
              f"(first {times[0]:.2f} s) = {best / GOAL_SECONDS:.2f} of the {GOAL_SECONDS:g} s goal; "
              f"file {mb:.2f} MB = {mb / GOAL_MB:.2f} of the {GOAL_MB:g} MB goal")
        for name, size in _parts(text)[:8]:
            print(f"    {name:>16}: {size / 1e6:.2f} MB")
        print(f"    `slimlab report` of that run from disk, a fresh process (imports, loading, render, write): "
              f"{_cli_seconds(df, samples, manifests):.2f} s")


def _cli_seconds(df, samples, manifests) -> float:
    """The command a user runs, timed whole: a run directory on disk, a new interpreter."""
    from slimlab.results import MANIFEST, RESULTS, SAMPLES
    from slimlab.results_schema import SCHEMA_VERSION

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "runs" / "r1"
        run.mkdir(parents=True)
        df.write_parquet(run / RESULTS)
        samples.write_parquet(run / SAMPLES)
        (run / MANIFEST).write_text(json.dumps({"schema_version": SCHEMA_VERSION, **manifests[0]}))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "slimlab.cli", "report", str(run), "--out", str(Path(tmp) / "r.html")],
                       check=True, capture_output=True)
        return time.perf_counter() - start


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000])

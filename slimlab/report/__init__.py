"""Reports: prep (frames -> frames), figures (frames -> plotly), html (documents)."""

from __future__ import annotations

from slimlab.report.figures import (
    hardening_table,
    package_diff_bars,
    package_treemap,
    postlink_panel,
    report_figures,
    results_table,
    rss_bars,
    section_bars,
    size_bars,
    startup_scatter,
)
from slimlab.report.html import display_report, render_report_html, write_report

__all__ = [
    "display_report",
    "hardening_table",
    "package_diff_bars",
    "package_treemap",
    "postlink_panel",
    "render_report_html",
    "report_figures",
    "results_table",
    "rss_bars",
    "section_bars",
    "size_bars",
    "startup_scatter",
    "write_report",
]

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


def _everything(path, trends: bool = False) -> dict:
    """What a report of ``path`` (a run directory or a data directory) shows; the files the
    loaders skip (corrupt, half-written runs) become the report's warnings."""
    import warnings

    from slimlab.results import (DataWarning, load, load_capabilities, load_manifests, load_packages,
                                 load_samples, run_dirs)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        found = {"df": load(path), "manifest": load_manifests(path), "packages": load_packages(path),
                 "capabilities": load_capabilities(path), "samples": load_samples(path),
                 "run_dirs": {d.name: d for d in run_dirs(path)}}
    for w in caught:  # anything else goes on to the caller's own handling
        if not issubclass(w.category, DataWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    found["load_warnings"] = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, DataWarning)))
    if trends:
        from slimlab.report.trends import trends_section

        found["sections"] = [trends_section(path)]
    return found


def write_path_report(path, out_path, title: str, trends: bool = False, **choices):
    """Write the report of a run or data directory (results, packages, probes, manifests);
    ``trends``: add the history of a data directory's runs (slimlab.report.trends). SlimlabError,
    and nothing written, when no row could be loaded."""
    found = _everything(path, trends)
    if found["df"].is_empty():
        from slimlab.errors import SlimlabError

        skipped = "; ".join(found["load_warnings"])
        why = (f": {skipped}. A run's tables are rebuilt from its journal by `slimlab repair RUN_DIR`"
               if skipped else ": its runs have no finished variant yet")
        raise SlimlabError(f"no results to report in {path}{why}")
    return write_report(out_path=out_path, title=title, **found, **choices)


def export_path_figures(path, out_dir, formats=("svg", "pdf"), trends: bool = False, **choices) -> list:
    """Write every figure of the report of ``path`` into ``out_dir``, one file per format;
    ``trends``: the history's figures too (slimlab.report.trends)."""
    import warnings

    from slimlab.report.export import export_figures
    from slimlab.results import DataWarning, load, load_capabilities, load_packages

    with warnings.catch_warnings():  # the report names the skipped files; the figures only leave them out
        warnings.simplefilter("ignore", DataWarning)
        figs = report_figures(load(path), load_packages(path), capabilities=load_capabilities(path), **choices)
        if trends:
            from slimlab.report.trends import trends_figures
            from slimlab.trends import trends as history

            figs += trends_figures(history(path))
    return export_figures(figs, out_dir, formats)


def display_path_report(path, title: str, trends: bool = False, **choices) -> None:
    """Show the report of a run or data directory in a notebook."""
    display_report(title=title, **_everything(path, trends), **choices)

__all__ = [
    "display_path_report",
    "display_report",
    "export_path_figures",
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
    "write_path_report",
    "write_report",
]

"""Run a parameterised notebook with papermill and export it to HTML with nbconvert.

The executed .ipynb is always kept (next to the HTML unless told otherwise): when a
notebook fails, it is the record of which cell failed and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from slimlab.errors import SlimlabError

KERNEL_NAME = "python3"


def _executed_path(notebook: Path, out_html: Path | None, executed_ipynb: Path | None) -> Path:
    if executed_ipynb is not None:
        path = Path(executed_ipynb)
    elif out_html is not None:
        path = Path(out_html).with_suffix(".ipynb")
    else:
        path = Path.cwd() / f"{notebook.stem}.executed.ipynb"
    # Never overwrite the source notebook with its executed copy (e.g. when the report is
    # written as notebooks/report.html beside notebooks/report.ipynb).
    if path.resolve() == notebook.resolve():
        path = path.with_name(f"{notebook.stem}.executed.ipynb")
    return path


def _plain(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as papermill can write them into a cell: Paths become strings."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in parameters.items()}


def export_html(executed_ipynb: Path, out_html: Path, exclude_input: bool = False) -> Path:
    """Export an executed notebook to one HTML file, outputs kept as they are."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        exclude_input=exclude_input,
        # The lab template loads require.js and MathJax from a CDN by default. Our reports
        # inline what they need; an empty URL keeps the page from reaching the network.
        require_js_url="",
        mathjax_url="",
    )
    body, _ = exporter.from_notebook_node(nbformat.read(executed_ipynb, as_version=4))
    out_html = Path(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(body, encoding="utf-8")
    return out_html


def run_notebook(
    notebook: str | Path,
    parameters: Mapping[str, Any],
    out_html: str | Path | None,
    executed_ipynb: str | Path | None = None,
    cwd: str | Path | None = None,
    exclude_input: bool = False,
) -> Path:
    """Execute ``notebook`` with ``parameters`` and export it to ``out_html``.

    The executed notebook goes to ``executed_ipynb``, or beside ``out_html`` with an
    .ipynb suffix, or (no HTML wanted) to ``<stem>.executed.ipynb`` in the current
    directory. ``cwd`` is the kernel's working directory, against which relative paths
    in the parameters resolve. Returns the HTML path, or the executed notebook's path
    when ``out_html`` is None. Raises SlimlabError when a cell fails or the notebook
    cannot be run.
    """
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from papermill.exceptions import PapermillExecutionError

    notebook = Path(notebook)
    if not notebook.is_file():
        raise SlimlabError(f"notebook not found: {notebook}")
    out_html = Path(out_html) if out_html is not None else None
    executed = _executed_path(notebook, out_html, Path(executed_ipynb) if executed_ipynb else None)
    executed.parent.mkdir(parents=True, exist_ok=True)

    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=_plain(parameters),
            kernel_name=KERNEL_NAME,
            progress_bar=False,
            cwd=str(cwd) if cwd is not None else None,
        )
    except PapermillExecutionError as exc:
        raise SlimlabError(
            f"notebook {notebook} failed in cell {exc.cell_index} "
            f"({exc.ename}: {exc.evalue}); the executed notebook, with the traceback, "
            f"is kept at {executed}"
        ) from exc
    except NoSuchKernel as exc:
        raise SlimlabError(
            f"no Jupyter kernel named {KERNEL_NAME!r}; install one with "
            "`python -m ipykernel install --user`"
        ) from exc

    if out_html is None:
        return executed
    return export_html(executed, out_html, exclude_input=exclude_input)

"""Run a parameterised notebook with papermill and export it to HTML with nbconvert.

The executed .ipynb is always kept (next to the HTML unless told otherwise): when a
notebook fails, it is the record of which cell failed and why. ``lab`` opens the same
notebooks in JupyterLab, with a kernel that runs this slimlab.
"""

from __future__ import annotations

import os
import sys
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


# The notebooks shipped beside the package (a source checkout or an editable install).
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _kernel_python() -> None:
    """Refuse to open JupyterLab when its KERNEL_NAME kernel would run another Python.

    The server runs on this Python, and Jupyter starts a kernelspec whose argv[0] is a bare
    "python" with the server's own interpreter, as it does ipykernel's built-in spec when
    there is no file; a kernelspec file elsewhere on Jupyter's path (~/.local first) that
    names another interpreter would run the notebooks without this slimlab.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    major, minor = sys.version_info[:2]
    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel as exc:
        raise SlimlabError(f"no Jupyter kernel named {KERNEL_NAME!r}; install one with "
                           f"`{sys.executable} -m ipykernel install --sys-prefix`") from exc
    python = spec.argv[0] if spec.argv else ""
    if python in ("python", f"python{major}", f"python{major}.{minor}") or Path(python) == Path(sys.executable):
        return
    raise SlimlabError(
        f"the Jupyter kernel {KERNEL_NAME!r} ({spec.resource_dir}) runs {python}, not this slimlab's Python "
        f"({sys.executable}); remove that kernelspec or run `{sys.executable} -m ipykernel install --user`")


def lab_argv(root: str | Path | None = None, port: int | None = None, ip: str = "127.0.0.1",
             open_browser: bool = True) -> list[str]:
    """The command that serves JupyterLab on ``root`` (default: NOTEBOOKS) with this Python's kernel.

    A port that is asked for is that port or an error, never the next free one, so that a
    script (or a test) knows where the server is. The token is Jupyter's own: a random
    one printed with the URL, or $JUPYTER_TOKEN.
    """
    root = Path(root) if root is not None else NOTEBOOKS
    if not root.is_dir():
        raise SlimlabError(f"no directory {root} to open JupyterLab on; pass one")
    _kernel_python()
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root.resolve()}", f"--ServerApp.ip={ip}"]
    if port is not None:
        argv += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if not open_browser:
        argv.append("--no-browser")
    if os.geteuid() == 0:  # setup and the tests run as root (a container, a CI box); Jupyter refuses that unasked
        argv.append("--allow-root")
    return argv


def lab(root: str | Path | None = None, port: int | None = None, ip: str = "127.0.0.1",
        open_browser: bool = True, data: str | Path | None = None) -> None:
    """Replace this process with JupyterLab (see lab_argv): Ctrl-C and signals reach the server itself.

    The notebooks' kernels run in the notebooks' folder, so ``data`` (default: $SLIMLAB_DATA,
    else ``data`` here) goes to them as an absolute $SLIMLAB_DATA (slimlab.results.data_dir)."""
    from slimlab.results import DATA_ENV, data_dir

    argv = lab_argv(root, port, ip, open_browser)
    os.environ[DATA_ENV] = str(data_dir(data).resolve())
    os.execv(argv[0], argv)

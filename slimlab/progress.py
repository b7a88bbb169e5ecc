"""Progress bars: widgets in JupyterLab, text lines under papermill, tqdm's bar in a terminal.

``tqdm.auto`` picks its widget bar in any Jupyter kernel, papermill's too, which has no
frontend: the executed notebook then keeps a widget reference and its text fallback, frozen
at "0%" (measured: one "measure:   0%| | 0/5" output for a finished bar). A Jupyter server
sets JPY_SESSION_NAME in the kernel it starts for a notebook; papermill (nbclient) does not.
So a kernel without it gets tqdm's text bar, whose every refresh papermill stores as a
line of the cell's output, refreshed seldom enough there to stay a short log.
"""

from __future__ import annotations

import os
import sys

from tqdm import std

# Seconds between refreshes of a text bar in a kernel without a frontend: each one is a line.
HEADLESS_INTERVAL_S = 10.0


def in_kernel() -> bool:
    """Running in a Jupyter kernel: an IPython shell with a kernel (importing ipykernel, as
    ipywidgets may, does not make a process one)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def widget_frontend() -> bool:
    """A kernel that a Jupyter server started for a notebook, whose frontend draws widgets."""
    return in_kernel() and bool(os.environ.get("JPY_SESSION_NAME"))


def tqdm(*args, **kwargs) -> std.tqdm:
    """A tqdm bar of the kind this process can show (see the module's docstring)."""
    if widget_frontend():
        # tqdm.auto: widgets when ipywidgets is there, else text
        from tqdm.auto import tqdm as auto

        return auto(*args, **kwargs)
    if in_kernel():
        kwargs.setdefault("mininterval", HEADLESS_INTERVAL_S)
    return std.tqdm(*args, **kwargs)

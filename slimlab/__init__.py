"""slimlab: measure what Go binary and container-image slimming techniques buy and cost.

The data flows one way: spec -> plan -> build -> post-link -> inspect -> check ->
measure -> results -> report. The names below are the public API. ``import slimlab``
loads the sweep and the results store, but no plotly, papermill or docker SDK: the
report (and with it plotly) is imported on first use of ``slimlab.report``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import SlimlabError, SpecError, ToolError
from .history import load_index, rebuild_index
from .model import SweepSpec, Variant, expand, plan
from .results import load, load_capabilities, load_manifests, load_packages, load_samples
from .sweep import sweep  # binds the function over the submodule of the same name

__version__ = "0.1.0"

__all__ = [
    "SlimlabError", "SpecError", "SweepSpec", "ToolError", "Variant", "expand", "load", "load_capabilities",
    "load_index", "load_manifests", "load_packages", "load_samples", "plan", "rebuild_index", "report", "sweep",
]

if TYPE_CHECKING:
    from . import report


def __getattr__(name: str):
    if name == "report":  # plotly is heavy: only a report needs it
        return importlib.import_module("slimlab.report")
    raise AttributeError(f"module 'slimlab' has no attribute {name!r}")

"""slimlab: measure what Go binary and container-image slimming techniques buy and cost.

The data flows one way: spec -> variants -> build -> post-link -> inspect -> measure ->
results -> report. The names below are the public API.
"""

from __future__ import annotations

from . import report
from .errors import SlimlabError, SpecError, ToolError
from .results import load, load_capabilities, load_manifests, load_packages, load_samples
from .spec import SweepSpec
from .sweep import plan, sweep
from .variants import Variant, expand

__version__ = "0.1.0"

__all__ = [
    "SlimlabError",
    "SpecError",
    "SweepSpec",
    "ToolError",
    "Variant",
    "expand",
    "load",
    "load_manifests",
    "load_capabilities",
    "load_packages",
    "load_samples",
    "plan",
    "report",
    "sweep",
]

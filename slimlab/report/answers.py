"""The report's first section: what to pick per workload (helper A's module).

PLACEHOLDER on branch i10-layout so the layout can call it: the lead takes helper A's
answers.py (branch i10-answers) over this file at merge. Same signature, no content.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl


def answers_html(df: pl.DataFrame, samples: pl.DataFrame | None, manifests: list[Mapping[str, Any]],
                 baseline: Any = None) -> str:
    """HTML of the answers section (escaped); "" here: the real one is helper A's."""
    return ""

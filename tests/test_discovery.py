"""Tool discovery: the one step that looks at the machine, still before any work."""

from __future__ import annotations

import pytest

import slimlab
from slimlab import SpecError


def test_an_unknown_go_release_is_still_an_error_before_any_build(tmp_path):
    with pytest.raises(SpecError, match="unknown Go release 'go1.99.0'"):
        slimlab.sweep({"workloads": ["hello"], "toolchains": ["go1.99.0"]}, data_dir=tmp_path, progress=False)
    assert not (tmp_path / "runs").exists()  # nothing was started

"""The package's shape: layering (import-linter) and a light `import slimlab`."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    assert lint.is_file(), "import-linter is a test dependency: make setup installs it"
    done = subprocess.run([str(lint), "--config", str(REPO / ".importlinter")], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout and "No import cycles" in done.stdout


def test_import_slimlab_loads_no_plotting_notebook_or_docker_library():
    code = ("import sys, time; t = time.perf_counter(); import slimlab; took = time.perf_counter() - t; "
            "print(took); print(sorted(m for m in ('plotly', 'papermill', 'docker', 'nbconvert') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    took, loaded = done.stdout.splitlines()
    log.info("import slimlab took %.3f s (a fresh interpreter)", float(took))
    assert loaded == "[]", loaded
    # slimlab.report is still there when asked for.
    subprocess.run([sys.executable, "-c", "import slimlab; slimlab.report.write_report"], check=True)

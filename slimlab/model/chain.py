"""The post-link chain grammar: which steps exist and in which order they may be chained.

Pure data. ``slimlab.postlink`` runs the steps; this module only names them, so a spec
can be validated without any tool on the machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError, did_you_mean


@dataclass(frozen=True)
class Step:
    name: str  # as written in a chain: "strip", "objcopy", "upx-9", ...
    tool: str  # the program it runs: "strip", "objcopy" or "upx"
    args: tuple[str, ...]  # the step's own flags (objcopy's -R list is added per file)
    description: str
    slow: bool = False  # minutes on a multi-MB binary: do not put it in a default sweep
    upx_level: str | None = None  # "1".."9", "best", "lzma", "brute" for UPX steps


def _upx_steps() -> list[Step]:
    steps = [Step(f"upx-{n}", "upx", (f"-{n}",), f"upx -{n}", upx_level=str(n)) for n in range(1, 10)]
    steps += [
        # --best is -9 plus a slower search: ~100 s for the 6 MB stripped httpd here.
        Step("upx-best", "upx", ("--best",), "upx --best (slow: about 10x upx -9)", slow=True, upx_level="best"),
        Step("upx-lzma", "upx", ("--lzma",), "upx --lzma (LZMA instead of NRV)", upx_level="lzma"),
        # --brute tries every method and filter: 16 s for the 1.5 MB hello, minutes for
        # larger binaries. Still works
        # when asked for; its output is cached so a resumed sweep does not repeat it.
        Step("upx-brute", "upx", ("--brute",), "upx --brute (slow: tries every method)", slow=True,
             upx_level="brute"),
    ]
    return steps


# Sections the ``objcopy`` step removes, besides what ``--strip-all`` drops (.symtab,
# .strtab and the DWARF .debug_* sections). The list is explicit so a reader knows what
# is gone; the step records the names it actually removed from each file.
OBJCOPY_REMOVE: dict[str, str] = {
    ".comment": "compiler and linker version strings",
    ".note.*": "ELF notes: Go and GNU build IDs, ABI tag, gold version, SystemTap probes",
    ".gnu_debuglink": "pointer to a separate debug file",
    ".gnu_debugaltlink": "pointer to a separate debug file",
    ".gnu.build.attributes": "annobin build notes",
    ".go_export": "gccgo's package export data, read only by the compiler",
}
# Matched by a pattern above but kept: the loader or kernel reads them.
OBJCOPY_KEEP: dict[str, str] = {
    ".note.gnu.property": "CET/BTI properties the kernel and ld.so read (PT_GNU_PROPERTY)",
}
# Kept although no Go program reads it at run time: `go version -m`, govulncheck and SBOM
# scanners identify a binary's modules by its .go.buildinfo, and it is only ~1 KiB.
# (Listed here so that the choice is visible; the step never touches it.)
OBJCOPY_DELIBERATELY_KEPT = (".go.buildinfo",)



STEPS: dict[str, Step] = {
    s.name: s
    for s in (
        Step("strip", "strip", ("--strip-all",), "strip --strip-all: symbol table and debug info"),
        Step("strip-debug", "strip", ("--strip-debug",), "strip --strip-debug: debug info only"),
        Step("objcopy", "objcopy", ("--strip-all",),
             "objcopy --strip-all plus -R for each section of OBJCOPY_REMOVE present"),
        *_upx_steps(),
    )
}
_STRIPS = ("strip", "strip-debug")
UPX_STEPS = tuple(name for name, s in STEPS.items() if s.tool == "upx")


@dataclass(frozen=True)
class Chain:
    name: str
    steps: tuple[str, ...] = ()
    upx_level: str | None = None

    @property
    def slow(self) -> bool:
        return any(STEPS[s].slow for s in self.steps)

    @property
    def tools(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(STEPS[s].tool for s in self.steps))


def _all_chains() -> dict[str, Chain]:
    chains = {"none": Chain("none")}
    prefixes = [(), *[(s,) for s in _STRIPS], ("objcopy",), *[(s, "objcopy") for s in _STRIPS]]
    for prefix in prefixes:
        for upx in (None, *UPX_STEPS):
            steps = (*prefix, *([upx] if upx else []))
            if steps:
                name = "+".join(steps)
                chains[name] = Chain(name, steps, STEPS[upx].upx_level if upx else None)
    return chains


CHAINS: dict[str, Chain] = _all_chains()


def get_chain(name: str) -> Chain:
    """The chain called ``name``; SpecError with a did-you-mean otherwise."""
    if name not in CHAINS:
        raise SpecError(
            f"unknown postlink chain {name!r}{did_you_mean(name, CHAINS)}; valid: 'none', or steps joined "
            f"with '+' in this order: [strip | strip-debug] [objcopy] [{' | '.join(UPX_STEPS)}], "
            "e.g. 'strip+upx-9'"
        )
    return CHAINS[name]

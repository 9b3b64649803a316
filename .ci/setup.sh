#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what building Cortex needs, and with --test what its test suite
# needs, on Debian 12. Idempotent: installs only what is missing, and runs
# `apt-get update` only when something is. Run it as root from anywhere.
#
#   bash .ci/setup.sh          compiler, meson, ninja, libraries (libpq too)
#   bash .ci/setup.sh --test   also node + npm, clang (libFuzzer), sqlite3,
#                              PostgreSQL 15 (the tests start their own
#                              throwaway server: tests/pglib.py; the
#                              packaged cluster service is not used),
#                              chromium (the review app's browser tests),
#                              the npm test clients in tests/e2e, the
#                              browser driver and axe-core in tests/web and
#                              the agent command lines in tests/agents (npm ci)
set -euo pipefail

want_test=0
for arg in "$@"; do
    case "$arg" in
        --test) want_test=1 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

build_pkgs=(gcc meson ninja-build pkg-config git python3 ca-certificates
    libjansson-dev libsqlite3-dev libcurl4-openssl-dev libgit2-dev libsodium-dev
    libmicrohttpd-dev libpcre2-dev libstemmer-dev libpq-dev)
# libclang-rt-dev holds libFuzzer and clang's sanitizer runtimes.
# systemd gives systemd-analyze, which checks the unit cortex-core installs;
# postgresql-15: the server binaries in /usr/lib/postgresql/15/bin that the
# tests run (initdb, postgres, psql) against a real database; chromium: the
# browser that tests/web drives headless (puppeteer-core never downloads one).
test_pkgs=(clang libclang-rt-dev sqlite3 openssl systemd postgresql-15 chromium)

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for p in "${build_pkgs[@]}"; do installed "$p" || missing+=("$p"); done
if [ "$want_test" = 1 ]; then
    for p in "${test_pkgs[@]}"; do installed "$p" || missing+=("$p"); done
    # Node.js may come from Debian (18.x, npm separate) or from elsewhere
    # (e.g. a nodejs package that bundles npm): judge by the commands.
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
fi

if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 ||
        die "missing: ${missing[*]}; no apt-get here, install them by hand"
    sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 ||
            die "missing: ${missing[*]}; run this script as root"
        sudo=(sudo)
    fi
    say "installing: ${missing[*]}"
    apt_log=$(mktemp)
    # apt's chatter (debconf notes, progress) is kept out of the way and
    # shown whole when a step fails.
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            >"$apt_log" 2>&1; then
        cat "$apt_log" >&2; rm -f "$apt_log"; die "apt-get update failed"
    fi
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1; then
        cat "$apt_log" >&2; rm -f "$apt_log"; die "apt-get install ${missing[*]} failed"
    fi
    rm -f "$apt_log"
    for p in "${missing[@]}"; do
        case "$p" in
            nodejs) command -v node >/dev/null 2>&1 || die "node is still missing after installing nodejs" ;;
            npm) command -v npm >/dev/null 2>&1 || die "npm is still missing after installing npm" ;;
            *) installed "$p" || die "$p is still not installed" ;;
        esac
    done
else
    say "system packages: all present"
fi

# The build needs these to resolve; fail here with a clear word rather than
# deep inside meson.
for pc in jansson sqlite3 libgit2 libsodium libcurl libmicrohttpd libpq; do
    pkg-config --exists "$pc" || die "pkg-config cannot find $pc"
done

if [ "$want_test" = 0 ]; then
    exit 0
fi

# The tests run PostgreSQL themselves, as the postgres user when root.
[ -x /usr/lib/postgresql/15/bin/initdb ] ||
    die "postgresql-15 is installed but /usr/lib/postgresql/15/bin/initdb is missing"

# --- the npm test clients (tests/e2e) ---------------------------------------
node_major=$(node -p 'process.versions.node.split(".")[0]') ||
    die "node does not run"
[ "$node_major" -ge 18 ] ||
    die "node $(node --version) is too old: the MCP SDK and inspector need >= 18"

npm_log=$(mktemp)
trap 'rm -f "$npm_log"' EXIT

# npm ci in DIR unless its node_modules was made from this very lock file by
# this node major version (npm ci always starts over). Sets fresh=1 when it
# ran. Warnings (engine notes, deprecations, unknown user config) stay
# quiet; on failure the whole log is shown.
npm_ci() {
    local dir=$1 name=$2 check=$3
    fresh=0
    [ -f "$dir/package-lock.json" ] || die "$dir/package-lock.json is missing"
    local stamp_want stamp_file
    stamp_want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1) node$node_major"
    stamp_file="$dir/node_modules/.cortex-setup-stamp"
    if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_want" ] &&
        [ -e "$dir/node_modules/$check" ]; then
        say "$name/node_modules: up to date"
        return 0
    fi
    say "npm ci in $name (node $(node --version), npm $(npm --version 2>/dev/null))"
    if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error \
            --update-notifier=false) >"$npm_log" 2>&1; then
        cat "$npm_log" >&2
        die "npm ci in $name failed"
    fi
    [ -e "$dir/node_modules/$check" ] ||
        die "npm ci in $name finished but $check is not installed"
    stamp_pending="$stamp_want"
    stamp_pending_file="$stamp_file"
    fresh=1
}

# --- the npm test clients (tests/e2e): the MCP SDK and Inspector -------------
e2e="$root/tests/e2e"
npm_ci "$e2e" tests/e2e @modelcontextprotocol/sdk/package.json
if [ "$fresh" = 1 ]; then
    # Check that the installed clients load under this node.
    (cd "$e2e" && node --input-type=module -e '
        await import("@modelcontextprotocol/sdk/client/index.js");
        await import("@modelcontextprotocol/sdk/client/stdio.js");
        await import("@modelcontextprotocol/inspector-cli/build/transport.js");
    ') >"$npm_log" 2>&1 || { cat "$npm_log" >&2; die "the npm test clients do not load under node $(node --version)"; }
    printf '%s\n' "$stamp_pending" >"$stamp_pending_file"
    say "tests/e2e/node_modules: installed"
fi

# --- the review app's browser tests (tests/web): puppeteer-core, axe-core ----
web="$root/tests/web"
npm_ci "$web" tests/web puppeteer-core/package.json
if [ "$fresh" = 1 ]; then
    (cd "$web" && node --input-type=module -e '
        await import("puppeteer-core");
        await import("node:fs").then((fs) => fs.accessSync("node_modules/axe-core/axe.min.js"));
    ') >"$npm_log" 2>&1 || { cat "$npm_log" >&2; die "puppeteer-core does not load under node $(node --version)"; }
    printf '%s\n' "$stamp_pending" >"$stamp_pending_file"
    say "tests/web/node_modules: installed"
fi
command -v chromium >/dev/null 2>&1 || die "chromium is installed but not on PATH"

# --- the agent command lines (tests/agents): Claude Code, Gemini CLI, Codex --
agents="$root/tests/agents"
if [ "$node_major" -lt 20 ]; then
    # Gemini CLI 0.61 needs node 20; the agents test fails saying so.
    say "tests/agents: skipped: node $(node --version) is older than 20, which Gemini CLI needs"
    exit 0
fi
npm_ci "$agents" tests/agents .bin/claude
if [ "$fresh" = 1 ]; then
    # Each runs and names its pinned version (in a throwaway home: nothing
    # of the person running this is read or written).
    agent_home=$(mktemp -d)
    for prog in claude gemini codex; do
        if ! out=$(cd "$agent_home" && HOME="$agent_home" timeout 120 \
                "$agents/node_modules/.bin/$prog" --version </dev/null 2>&1); then
            rm -rf "$agent_home"
            printf '%s\n' "$out" >&2
            die "$prog from tests/agents does not run under node $(node --version)"
        fi
    done
    rm -rf "$agent_home"
    printf '%s\n' "$stamp_pending" >"$stamp_pending_file"
    say "tests/agents/node_modules: installed"
fi

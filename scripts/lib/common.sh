# shellcheck shell=bash
# scripts/lib/common.sh - shared helpers for jobtrack's scripts. Source it:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#
# Provides:
#   JT_ROOT                      absolute path of the repository root
#   JT_JOBS                      build parallelism (JOBTRACK_JOBS, default 2)
#   JT_PKGS_BASE/_TEST/_BROWSER  the Debian package lists (the only place they live)
#   jt_install_deps [pkg...]     install whatever of JT_PKGS_BASE + pkg... is missing
#   jt_free_port                 print a free TCP port on 127.0.0.1
#   jt_wait_for SECS CMD...      poll CMD every 0.2 s until it succeeds (bounded)
#   jt_wait_port PORT [SECS]     wait until 127.0.0.1:PORT accepts connections
#   jt_wait_url URL [SECS]       wait until URL answers with an HTTP 2xx/3xx
#   jt_log / jt_warn / jt_die    messages on stderr

if [[ -n "${_JT_COMMON_SOURCED:-}" ]]; then
  return 0
fi
_JT_COMMON_SOURCED=1

JT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
JT_JOBS="${JOBTRACK_JOBS:-2}"
export JT_ROOT JT_JOBS

# --- Debian packages: keep every list here and nowhere else. ----------------
# Needed to configure and build the library and its examples.
JT_PKGS_BASE=(
  build-essential cmake pkg-config git ca-certificates
  libasio-dev nlohmann-json3-dev catch2 libcpp-httplib-dev
)
# Needed by the test suite: clang + its runtimes (sanitizers, libFuzzer),
# services and their clients, benchmarks and load tools, plotting, utilities.
# nodejs is added by jt_test_packages only when `node` is not on PATH.
JT_PKGS_TEST=(
  clang libclang-rt-14-dev
  redis-server libhiredis-dev
  libbenchmark-dev wrk
  gnuplot-nox curl procps python3
)
# Browser tests only (large: scripts/test installs them, scripts/demo never).
JT_PKGS_BROWSER=(chromium chromium-driver)

# jt_test_packages: print (one per line) the extras scripts/test needs.
jt_test_packages() {
  printf '%s\n' "${JT_PKGS_TEST[@]}"
  # Node may come from Debian (nodejs + npm) or another repository that
  # bundles npm inside nodejs: only ask for what is actually missing.
  if ! command -v node >/dev/null 2>&1; then
    printf '%s\n' nodejs
  fi
  if ! command -v npm >/dev/null 2>&1; then
    printf '%s\n' npm
  fi
  if [[ "${JOBTRACK_SKIP_BROWSER:-0}" != 1 ]]; then
    printf '%s\n' "${JT_PKGS_BROWSER[@]}"
  fi
}

# --- messages ------------------------------------------------------------------
jt_log() { printf '==> %s\n' "$*" >&2; }
jt_warn() { printf 'warning: %s\n' "$*" >&2; }
jt_die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# --- dependencies --------------------------------------------------------------
# jt_missing_packages PKG...: print the packages dpkg does not report installed.
jt_missing_packages() {
  local -A installed=()
  local pkg status
  # One dpkg-query call for all of them (unknown names only warn on stderr).
  while IFS=' ' read -r pkg status; do
    if [[ "$status" == "install ok installed" ]]; then
      installed["$pkg"]=1
    fi
  done < <(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null || true)
  for pkg in "$@"; do
    if [[ -z "${installed[$pkg]:-}" ]]; then
      printf '%s\n' "$pkg"
    fi
  done
}

# jt_install_deps [EXTRA_PKG...]: make sure JT_PKGS_BASE and the extras are
# installed. Fast path (all present): no apt-get at all. Otherwise installs as
# root, or through `sudo -n`, or prints the exact command and exits 1.
jt_install_deps() {
  local -a wanted=("${JT_PKGS_BASE[@]}" "$@") missing=()
  if ! command -v dpkg-query >/dev/null 2>&1; then
    jt_warn "not a Debian-based system: make sure these are installed: ${wanted[*]}"
    return 0
  fi
  mapfile -t missing < <(jt_missing_packages "${wanted[@]}")
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  local install_line="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
  local -a as_root=()
  if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      as_root=(sudo -n)
    else
      printf 'error: missing packages: %s\n' "${missing[*]}" >&2
      printf 'Install them as root, then run this script again:\n\n  %s\n\n' \
        "$install_line" >&2
      exit 1
    fi
  fi
  jt_log "installing missing packages: ${missing[*]}"
  "${as_root[@]}" apt-get update
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
}

# --- ports and waiting ------------------------------------------------------------
# jt_free_port: print a TCP port that is free on 127.0.0.1 right now.
jt_free_port() {
  if command -v python3 >/dev/null 2>&1 &&
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null; then
    return 0
  fi
  if command -v node >/dev/null 2>&1 &&
    node -e 'const s = require("net").createServer();
s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });' 2>/dev/null; then
    return 0
  fi
  # Last resort: probe random high ports; a refused connection means free.
  local port tries
  for ((tries = 0; tries < 200; tries++)); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      printf '%s\n' "$port"
      return 0
    fi
  done
  jt_warn "could not find a free TCP port"
  return 1
}

# jt_wait_for SECS CMD...: run CMD every 0.2 s until it succeeds; fail after SECS.
jt_wait_for() {
  local secs="$1"
  shift
  local deadline=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      return 1
    fi
    sleep 0.2
  done
}

_jt_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# jt_wait_port PORT [SECS=30]: wait until something listens on 127.0.0.1:PORT.
jt_wait_port() {
  jt_wait_for "${2:-30}" _jt_port_open "$1" || {
    jt_warn "nothing listening on 127.0.0.1:$1 after ${2:-30}s"
    return 1
  }
}

# jt_wait_url URL [SECS=30]: wait until URL answers 2xx/3xx.
jt_wait_url() {
  jt_wait_for "${2:-30}" curl -fsS -o /dev/null --max-time 2 "$1" || {
    jt_warn "$1 did not answer after ${2:-30}s"
    return 1
  }
}

#!/usr/bin/env bash
# Builds the real peers the simulator is judged by — upstream's own talosctl, etcd and etcdutl — from their Go modules,
# into a cache outside the repository (never committed). Idempotent: a binary already in the cache is kept.
#   TALOS_DR_PEERS   cache directory (default: ~/.cache/talos-dr-peers); binaries land in $TALOS_DR_PEERS/bin
# Without Go it says so and exits 0: the tests that need a peer then report themselves skipped.
set -euo pipefail

# talosctl: the newest 1.14 patch the module proxy serves is v1.14.1 (v1.14.2+ refused), but some of its
# dependencies are refused too (cosi-project/runtime v1.16.3, siderolabs/ethtool v0.6.0-sidero), so it cannot be built
# here; v1.13.0 is the newest release whose whole module graph is served. Tried in order; a failure is remembered.
TALOS_VERSIONS="${TALOS_DR_TALOS_VERSIONS:-v1.14.1 v1.13.0}"
ETCD_VERSION="${TALOS_DR_ETCD_VERSION:-v3.7.3}"    # newest 3.7 the module proxy serves (Talos 1.14 ships 3.7.x)
ETCD36_VERSION="${TALOS_DR_ETCD36_VERSION:-v3.6.16}" # Talos 1.12/1.13 ship etcd 3.6.x
PEERS="${TALOS_DR_PEERS:-$HOME/.cache/talos-dr-peers}"
BIN="$PEERS/bin"

if ! command -v go >/dev/null; then
  echo "build-peers: Go is not installed; tests that need talosctl/etcd 3.7 will be skipped."
  exit 0
fi
mkdir -p "$BIN" "$PEERS/work"
export GOFLAGS="${GOFLAGS:--p=1}"
export CGO_ENABLED=0
export GOWORK=off # the talos module ships a go.work naming directories a module zip leaves out
NICE="nice -n 10"

# talosctl: the talos module's go.mod replaces pkg/machinery with ./pkg/machinery, so `go install …@version` is refused.
# Build from the downloaded module source, with the nested module fetched at the same version and put where the replace
# points (a module zip never holds nested modules).
build_talosctl_version() {
  local version="$1"
  local out="$BIN/talosctl-$version"
  [ -x "$out" ] && return 0
  [ -e "$PEERS/failed-talosctl-$version" ] && return 1
  local src="$PEERS/work/talos-$version"
  local talosdir machdir
  talosdir=$(go mod download -json "github.com/siderolabs/talos@$version" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p') || return 1
  machdir=$(go mod download -json "github.com/siderolabs/talos/pkg/machinery@$version" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p') || return 1
  [ -n "$talosdir" ] && [ -n "$machdir" ] || return 1
  rm -rf "$src"
  cp -r "$talosdir" "$src" && chmod -R u+w "$src" || return 1
  rm -rf "$src/pkg/machinery"
  cp -r "$machdir" "$src/pkg/machinery" && chmod -R u+w "$src/pkg/machinery" || return 1
  # A fork the proxy refuses is dropped for the upstream module the fork patches (v1.13.0: smira/containerd is a
  # containerd v2.2 fork used by the image cache, which the tests never call).
  if [ "$version" = v1.13.0 ]; then
    (cd "$src" && go mod edit -dropreplace github.com/containerd/containerd/v2) || return 1
  fi
  # Time-boxed: on a busy 2-core machine the first build takes most of an hour. Compiled packages stay in Go's build
  # cache, so a build that ran out of time goes on where it stopped the next time this script runs.
  local status=0
  (cd "$src" && timeout "${TALOS_DR_TALOSCTL_BUILD_SECONDS:-1500}" $NICE go build -mod=mod -trimpath \
    -ldflags "-s -w -X github.com/siderolabs/talos/pkg/machinery/version.Tag=$version" \
    -o "$out.tmp" ./cmd/talosctl) || status=$?
  if [ "$status" = 0 ]; then
    mv "$out.tmp" "$out"
    rm -rf "$src"
    return 0
  fi
  rm -rf "$src" "$out.tmp"
  if [ "$status" = 124 ]; then
    echo "build-peers: talosctl $version did not finish in time; the next run goes on from Go's build cache." >&2
  else
    touch "$PEERS/failed-talosctl-$version"
  fi
  return 1
}

# The first version that builds is the talosctl the tests use.
build_talosctl() {
  local version
  for version in $TALOS_VERSIONS; do
    if build_talosctl_version "$version"; then
      ln -sf "talosctl-$version" "$BIN/talosctl"
      return 0
    fi
    echo "build-peers: talosctl $version cannot be built from the module proxy; trying the next version." >&2
  done
  return 1
}

# etcd and etcdutl: their modules also replace sibling modules with local paths, so they are built as main packages of
# a dependency from a throw-away module (a dependency's replace directives do not apply there).
build_etcd() {
  local version="$1"
  local etcd="$BIN/etcd-$version" etcdutl="$BIN/etcdutl-$version"
  [ -x "$etcd" ] && [ -x "$etcdutl" ] && return 0
  local mod="$PEERS/work/etcd-$version"
  rm -rf "$mod" && mkdir -p "$mod"
  (
    cd "$mod"
    go mod init talos-dr-peers/etcd >/dev/null 2>&1
    $NICE go get "go.etcd.io/etcd/server/v3@$version" "go.etcd.io/etcd/etcdutl/v3@$version" >/dev/null
    [ -x "$etcd" ] || { $NICE go build -trimpath -ldflags "-s -w" -o "$etcd.tmp" go.etcd.io/etcd/server/v3 && mv "$etcd.tmp" "$etcd"; }
    [ -x "$etcdutl" ] || { $NICE go build -trimpath -ldflags "-s -w" -o "$etcdutl.tmp" go.etcd.io/etcd/etcdutl/v3 && mv "$etcdutl.tmp" "$etcdutl"; }
  ) || { rm -rf "$mod"; return 1; }
  rm -rf "$mod"
}

status=0
for step in "build_talosctl" "build_etcd $ETCD_VERSION" "build_etcd $ETCD36_VERSION"; do
  if ! $step; then
    echo "build-peers: $step failed; the tests that need it will be skipped." >&2
    status=1
  fi
done
[ -x "$BIN/etcd-$ETCD_VERSION" ] && ln -sf "etcd-$ETCD_VERSION" "$BIN/etcd"
[ -x "$BIN/etcdutl-$ETCD_VERSION" ] && ln -sf "etcdutl-$ETCD_VERSION" "$BIN/etcdutl"
ls -l "$BIN"
# A failed build must not fail CI: the tests skip with a reason. The status is printed for the log only.
echo "build-peers: done (status $status)"

#!/usr/bin/env bash
# Builds the S3-compatible server the S3 tests start on loopback (gofakes3's own command, from its Go module) into a
# cache outside the repository; does nothing when it is already there. The tests look in the same place (or at
# $TALOS_DR_S3_SERVER) and say they were skipped when it is absent.
set -euo pipefail
VERSION=v1.2.0
CACHE="${TALOS_DR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/talos-dr}"
BIN="$CACHE/s3-$VERSION/bin"
if [ -x "$BIN/gofakes3" ]; then
  echo "gofakes3 $VERSION already built: $BIN/gofakes3"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "go is not installed: the S3 tests will be skipped" >&2
  exit 0
fi
mkdir -p "$BIN"
if ! GOBIN="$BIN" GOFLAGS=-mod=mod go install "github.com/johannesboyne/gofakes3/cmd/gofakes3@$VERSION"; then
  echo "gofakes3 $VERSION could not be built: the S3 tests will be skipped" >&2
  exit 0
fi
echo "built $BIN/gofakes3"

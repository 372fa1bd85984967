#!/usr/bin/env bash
# Runs staticcheck over the module, installing the pinned version with
# `go install` (from the Go module proxy) when it is missing.
set -euo pipefail
version=v0.8.2
bin="$(go env GOPATH)/bin/staticcheck"
if command -v staticcheck >/dev/null 2>&1; then
  bin=$(command -v staticcheck)
elif [ ! -x "$bin" ]; then
  echo "staticcheck.sh: installing staticcheck $version with go install" >&2
  go install "honnef.co/go/tools/cmd/staticcheck@$version"
fi
"$bin" ./...

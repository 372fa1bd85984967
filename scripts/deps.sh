#!/usr/bin/env bash
# Installs what `make test` needs beyond Go itself on a fresh Debian machine:
# gcc (the race detector needs cgo). Prints nothing when it is there already.
set -euo pipefail
if command -v gcc >/dev/null 2>&1; then
  exit 0
fi
echo "deps.sh: installing gcc with apt-get (go test -race needs cgo)" >&2
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gcc libc6-dev >/dev/null

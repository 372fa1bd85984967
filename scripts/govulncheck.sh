#!/usr/bin/env bash
# Runs govulncheck over the module when its vulnerability database can be
# reached, and skips with one line when it cannot: `make test` must not fail
# for want of a network. Installs govulncheck with `go install` (from the Go
# module proxy) only when it is missing; if that fails too, it skips.
# Fails only when govulncheck reports a vulnerability the code reaches
# (its exit code 3).
#
# Environment: GOVULNDB (default https://vuln.go.dev),
# GOVULNCHECK_TIMEOUT (seconds for the scan, default 300).
set -uo pipefail
db=${GOVULNDB:-https://vuln.go.dev}
limit=${GOVULNCHECK_TIMEOUT:-300}
host=${db#*://}
host=${host%%/*}
port=443
case "$db" in http://*) port=80 ;; esac
case "$host" in *:*) port=${host##*:}; host=${host%:*} ;; esac

skip() { echo "govulncheck.sh: skipped: $*"; exit 0; }

if [[ "$db" == file://* ]]; then
  : # a local copy of the database
elif ! timeout 5 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
  skip "the vulnerability database $db cannot be reached"
fi

bin="$(go env GOPATH)/bin/govulncheck"
if command -v govulncheck >/dev/null 2>&1; then
  bin=$(command -v govulncheck)
elif [ ! -x "$bin" ]; then
  echo "govulncheck.sh: installing govulncheck with go install" >&2
  if ! timeout 300 go install golang.org/x/vuln/cmd/govulncheck@latest >/dev/null 2>&1; then
    skip "govulncheck is not installed and go install golang.org/x/vuln/cmd/govulncheck@latest failed"
  fi
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout "$limit" "$bin" -db "$db" ./... >"$out" 2>&1
code=$?
case "$code" in
  0) echo "govulncheck.sh: no known vulnerability reached" ;;
  3) cat "$out"; echo "govulncheck.sh: vulnerabilities reached (above)" >&2; exit 1 ;;
  124) skip "govulncheck did not finish within ${limit}s" ;;
  *) skip "govulncheck could not run ($(grep -v '^$' "$out" | tail -n 1))" ;;
esac

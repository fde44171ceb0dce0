#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests talk
# to when it is missing (PostgreSQL server binaries, HAProxy and wrk, from
# Debian's packages), then runs `go test -race ./...` and the end-to-end test
# behind HAProxy, with any extra arguments passed through.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
for tool in haproxy wrk; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

go test -race "$@" ./...

# The deployment files: strict Kubernetes decoding, systemd-analyze, budgets.
(cd example/deploy && go test "$@" ./...)

# End to end: the example behind a real HAProxy under wrk's load, through
# rolling restarts with and without a drain.
go test -tags e2e -count=1 "$@" ./e2e

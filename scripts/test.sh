#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests talk
# to when it is missing (scripts/install-deps.sh), then runs
# `go test -race ./...`, the deployment files' checks, and the end-to-end
# test behind HAProxy, with any extra arguments passed through.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

go test -race "$@" ./...

# The deployment files: strict Kubernetes decoding, systemd-analyze, budgets.
(cd example/deploy && go test "$@" ./...)

# The probe timing linter (its own module: Kubernetes API types and YAML).
(cd cmd/probelint && go test "$@" ./...)

# End to end: the example behind a real HAProxy under wrk's load, through
# rolling restarts with and without a drain, and a PostgreSQL outage with
# the check shared and local; gRPC rolling restarts; overload; a real
# Prometheus scraping the example through its whole life; and a FastAPI app
# under uvicorn, wrapped by probe run, restarted behind HAProxy under load
# beside bare uvicorn.
# A module of its own (e2e/go.mod), so the library's go.mod carries no
# browser driver.
(cd e2e && go test -tags e2e -count=1 "$@" ./...)

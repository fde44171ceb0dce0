#!/usr/bin/env bash
# Regenerates the screenshots in docs/img from the browser tests: the status
# page (the example with a real PostgreSQL, warming, ready, in an outage and
# draining) and the fleet page (three instances during a PostgreSQL outage).
# Needs what scripts/test.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
dir=$(mktemp -d)
PAGE_SCREENSHOTS="$dir" (cd e2e && go test -tags e2e -count=1 -run 'TestStatusPageInABrowser|TestFleetView' ./...)
cp "$dir/status-page-outage.png" docs/img/status-page.png
cp "$dir/fleet-page.png" docs/img/fleet-page.png
rm -rf "$dir"
echo "docs/img/status-page.png and docs/img/fleet-page.png regenerated"

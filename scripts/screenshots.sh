#!/usr/bin/env bash
# Regenerates the status page screenshots in docs/img from the browser test:
# the example with a real PostgreSQL, warming, ready, in an outage and
# draining. Needs what scripts/test.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
dir=$(mktemp -d)
PAGE_SCREENSHOTS="$dir" go test -tags e2e -count=1 -run TestStatusPageInABrowser ./e2e
cp "$dir/status-page-outage.png" docs/img/status-page.png
rm -rf "$dir"
echo "docs/img/status-page.png regenerated"

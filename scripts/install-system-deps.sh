#!/usr/bin/env bash
# Installs the Debian packages whose tools lnlb's demo, tests and bench run, if any is missing
# (the table of tools and packages: scripts/system-deps.mjs). Needs root to install.
set -euo pipefail
cd "$(dirname "$0")/.."
if node scripts/system-deps.mjs check all 2>/dev/null; then
  echo "system packages: all present"
  exit 0
fi
exec env LNLB_INSTALL=always node scripts/system-deps.mjs ensure all

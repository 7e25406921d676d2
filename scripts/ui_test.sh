#!/usr/bin/env bash
# make test-ui: the web editor (oir serve) in a real browser. Installs, when
# root, Debian's chromium and chromium-driver (else prints the apt-get line);
# makes a small venv with only Selenium from PyPI under build/ui-venv (reused
# by later runs; the tools venv, with torch, is not needed); runs
# tests/ui/test_ui.py against BUILD_DIR/oir, screenshots in BUILD_DIR/ui/.
# Usage: scripts/ui_test.sh BUILD_DIR
set -euo pipefail
out=${1:-build/release}
cd "$(dirname "$0")/.."
selenium_version=4.40.0
pkgs="chromium chromium-driver python3-venv"
missing=""
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "test-ui: installing$missing" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "test-ui: missing Debian packages; run:  sudo apt-get install -y$missing" >&2
    exit 1
  fi
fi
venv=build/ui-venv
if ! "$venv/bin/python" -c "import selenium, sys; sys.exit(selenium.__version__ != '$selenium_version')" 2>/dev/null; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "selenium==$selenium_version"
fi
exec "$venv/bin/python" tests/ui/test_ui.py --oir "$out/oir" --shots "$out/ui"

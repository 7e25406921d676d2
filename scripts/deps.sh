#!/usr/bin/env bash
# Installs the Debian packages the C build needs, when run as root; otherwise
# prints the apt-get line to run. Quiet when everything is present.
set -euo pipefail
pkgs="build-essential libopenblas-dev libopenblas-pthread-dev libcjson-dev libpng-dev libjpeg-dev libyaml-dev pkgconf libmicrohttpd-dev"
missing=""
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "deps: installing$missing" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
  echo "deps: missing Debian packages; run:  sudo apt-get install -y$missing" >&2
  exit 1
fi

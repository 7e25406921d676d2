#!/usr/bin/env bash
# Installs the Debian packages the C build needs, when run as root; otherwise
# prints the apt-get line to run. Quiet when everything is present.
# The Vulkan backend's packages (libvulkan-dev, glslc, and lavapipe from
# mesa-vulkan-drivers, which runs Vulkan compute on the CPU so that `make
# test` checks the GPU code anywhere) are installed with the rest as root;
# without root their absence is only a note: the build is then CPU-only
# (OIR_VULKAN=0 skips them altogether).
set -euo pipefail
pkgs="build-essential libopenblas-dev libopenblas-pthread-dev libcjson-dev libpng-dev libjpeg-dev libyaml-dev pkgconf libmicrohttpd-dev"
vk_pkgs="libvulkan-dev glslc mesa-vulkan-drivers"
[ "${OIR_VULKAN:-auto}" = 0 ] && vk_pkgs=""
missing=""
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
vk_missing=""
for p in $vk_pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || vk_missing="$vk_missing $p"
done
[ -z "$missing$vk_missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "deps: installing$missing$vk_missing" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing $vk_missing >/dev/null
elif [ -n "$missing" ]; then
  echo "deps: missing Debian packages; run:  sudo apt-get install -y$missing$vk_missing" >&2
  exit 1
else
  echo "deps: note: no Vulkan backend without$vk_missing (sudo apt-get install -y$vk_missing; or OIR_VULKAN=0)" >&2
fi

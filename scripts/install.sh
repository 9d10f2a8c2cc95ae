#!/usr/bin/env bash
# Installs what bacedge needs on Debian (run as root): system packages and a venv in .venv.
# Idempotent: run it again and it only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv python3-dev ca-certificates wabt tmux
  systemd systemd-container debootstrap binutils lintian dpkg-dev
  podman runc uidmap slirp4netns fuse-overlayfs busybox-static
  mmdebstrap fdisk dosfstools mtools zstd qemu-system-x86 ovmf qemu-user-static binfmt-support
  arch-test
  iproute2 iptables)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[dev,store]"
echo "bacedge installed: $(.venv/bin/bacedge --version)" >&2

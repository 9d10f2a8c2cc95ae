#!/usr/bin/env bash
# Builds dist/bacedge_<version>_<arch>.deb: a self-contained virtualenv in /opt/bacedge
# (every wheel inside, nats-server from its wheel, SeaweedFS's weed from the [store]
# extra for the local S3 store), the systemd units, a default config (conffile) and
# maintainer scripts. The result installs with no network.
#
#   bash packaging/build-deb.sh            # needs Debian's python3, python3-venv, dpkg-dev
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=/usr/bin/python3   # the target's interpreter: the venv links to it
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' edge/__init__.py)
ARCH=$(dpkg --print-architecture)
NAME="bacedge_${VERSION}_${ARCH}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STAGE="$WORK/$NAME"
PREFIX=/opt/bacedge

step() { printf '==> %s\n' "$*" >&2; }

step "wheels for bacedge $VERSION ($ARCH)"
"$PYTHON" -m venv "$WORK/build-venv"
"$WORK/build-venv/bin/pip" install -q --upgrade pip wheel
"$WORK/build-venv/bin/pip" wheel -q --wheel-dir "$WORK/wheels" "$ROOT[store]"

step "virtualenv in $PREFIX"
"$PYTHON" -m venv "$STAGE$PREFIX"
"$STAGE$PREFIX/bin/pip" install -q --no-index --find-links "$WORK/wheels" "bacedge[store]"
"$STAGE$PREFIX/bin/pip" uninstall -q -y pip
# The venv was made in the staging dir: point its scripts and config at /opt/bacedge.
grep -rlI --null "$STAGE$PREFIX" "$STAGE$PREFIX/bin" "$STAGE$PREFIX/pyvenv.cfg" \
    | xargs -0 sed -i "s|$STAGE$PREFIX|$PREFIX|g"
find "$STAGE$PREFIX" -name __pycache__ -type d -prune -exec rm -rf {} +
find "$STAGE$PREFIX" -name '*.pyc' -delete
find "$STAGE$PREFIX" -name '*.py' -perm /111 -exec chmod a-x {} +
# Only our entry point, nats-server and weed (the store's server) are meant to be run from
# the venv. weed comes stripped from its wheel.
find "$STAGE$PREFIX/bin" -type f ! -name bacedge ! -name nats-server ! -name weed \
    ! -name 'python*' -delete
find "$STAGE$PREFIX" \( -name '*.so' -o -name nats-server \) -type f \
    -exec strip --strip-unneeded --remove-section=.comment --remove-section=.note {} +

step "units, config, docs"
install -d "$STAGE/lib/systemd/system" "$STAGE/etc/bacedge" "$STAGE/usr/bin" \
    "$STAGE/usr/share/doc/bacedge" "$STAGE$PREFIX/share/doc" "$STAGE/usr/share/lintian/overrides"
install -m 0644 systemd/*.service "$STAGE/lib/systemd/system/"
install -m 0644 packaging/config.toml "$STAGE/etc/bacedge/config.toml"
ln -s "$PREFIX/bin/bacedge" "$STAGE/usr/bin/bacedge"
install -m 0644 README.md docs/*.md "$STAGE$PREFIX/share/doc/"
install -m 0755 packaging/setup-host.sh "$STAGE$PREFIX/share/setup-host.sh"
install -m 0644 packaging/deb/copyright "$STAGE/usr/share/doc/bacedge/copyright"
gzip -9n -c packaging/deb/changelog > "$STAGE/usr/share/doc/bacedge/changelog.gz"
install -m 0644 packaging/deb/lintian-overrides "$STAGE/usr/share/lintian/overrides/bacedge"

step "control files"
install -d "$STAGE/DEBIAN"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$STAGE/DEBIAN/"
echo "/etc/bacedge/config.toml" > "$STAGE/DEBIAN/conffiles"
PYVER=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
NEXT=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1] + 1}")')
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: bacedge
Version: $VERSION
Architecture: $ARCH
Maintainer: bacedge maintainers <maintainers@bacedge.invalid>
Installed-Size: $SIZE
Depends: libc6 (>= 2.35), python3 (>= $PYVER), python3 (<< $NEXT), passwd, adduser
Recommends: podman, runc | crun, uidmap, slirp4netns, fuse-overlayfs, dbus-user-session
Section: admin
Priority: optional
Homepage: https://bacedge.invalid
Description: Bacalhau-compatible compute for fleets of edge devices
 bacedge runs an orchestrator (job state, scheduling, embedded NATS hub and a
 Bacalhau-compatible REST API) and compute nodes that run WebAssembly tasks and
 rootless Podman containers next to the data, and keep working through network
 outages.
CONTROL

mkdir -p dist
step "dist/$NAME.deb"
# BACEDGE_DEB_COMPRESS=zstd|none: a faster build when the .deb is only an intermediate (images/).
dpkg-deb --root-owner-group -Z"${BACEDGE_DEB_COMPRESS:-xz}" --build "$STAGE" "dist/$NAME.deb" >/dev/null
ls -l "dist/$NAME.deb" >&2

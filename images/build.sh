#!/usr/bin/env bash
# Builds an offline bacedge appliance: a Debian 13 (trixie) rootfs with the project's own
# .deb (built inside that Debian, for its Python), nats-server, the local S3 store, rootless
# Podman for the service user, a busybox task image and any --preload archives, the units
# of the profile's role, first-boot provisioning and a health check; then a GPT UEFI disk
# image (systemd-boot, root partition that grows to the disk on first boot).
#
#   sudo bash images/build.sh [--arch x86_64|aarch64] [--profile images/profiles/standalone.toml]
#        [--preload tasks.tar]... [--out dist/] [--cache DIR] [--no-raw] [--size 3G]
#
# Outputs in --out: bacedge-appliance-VERSION-ARCH.rootfs.tar.zst, .raw (unless --no-raw),
# .manifest.json, SHA256SUMS. Needs Debian's mirror and PyPI at build time, nothing at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
START=$(date +%s)

ARCH=$(uname -m)
PROFILE=images/profiles/standalone.toml
OUT=dist
CACHE=${BACEDGE_IMAGE_CACHE:-/var/cache/bacedge-images}
RAW=yes
SIZE=3G
SUITE=trixie
PRELOAD=()

die() { echo "images/build.sh: $*" >&2; exit 2; }
step() { printf '==> %s\n' "$*" >&2; }

while (($#)); do
  case "$1" in
    --arch) ARCH=${2:?}; shift 2 ;;
    --profile) PROFILE=${2:?}; shift 2 ;;
    --preload) PRELOAD+=("${2:?}"); shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --cache) CACHE=${2:?}; shift 2 ;;
    --size) SIZE=${2:?}; shift 2 ;;
    --no-raw) RAW=no; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

case "$ARCH" in
  x86_64|amd64) ARCH=x86_64; DEBARCH=amd64; EFI=x64; QEMU= ;;
  aarch64|arm64) ARCH=aarch64; DEBARCH=arm64; EFI=aa64; QEMU=qemu-aarch64-static ;;
  *) die "unsupported --arch $ARCH: use x86_64 or aarch64" ;;
esac
[ "$(id -u)" = 0 ] || die "must run as root (chroot, device nodes, file ownership): sudo bash images/build.sh ..."
[ -f "$PROFILE" ] || die "profile $PROFILE not found (see images/profiles/)"
for f in "${PRELOAD[@]}"; do
  [ -f "$f" ] || die "--preload $f: no such file"
done

need() {  # need TOOL DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 || die "$1 not found: apt-get install -y $2"
}
need mmdebstrap mmdebstrap
need python3 python3
need zstd zstd
need unshare util-linux
need podman podman
need wat2wasm wabt
need mkfs.ext4 e2fsprogs
if [ "$RAW" = yes ]; then
  need sfdisk fdisk
  need mkfs.vfat dosfstools
  need mcopy mtools
fi
if [ -n "$QEMU" ]; then
  need "$QEMU" qemu-user-static
  need arch-test arch-test  # mmdebstrap's check that the foreign architecture runs here
  [ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
    || die "binfmt_misc is not available: apt-get install -y binfmt-support"
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 \
    || die "aarch64 binaries cannot run here: apt-get install -y qemu-user-static binfmt-support"
fi

VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' edge/__init__.py)
NAME="bacedge-appliance-$VERSION-$ARCH"
MIRROR=${BACEDGE_DEBIAN_MIRROR:-$(python3 -c 'import sys; sys.path.insert(0, "."); from tests.system.machine import debian_mirror; print(debian_mirror())' 2>/dev/null || echo http://deb.debian.org/debian)}
mapfile -t PROFILE_VARS < <(python3 - "$PROFILE" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    p = tomllib.load(fh)
role = p.get("role")
if role not in ("standalone", "compute", "orchestrator"):
    sys.exit(f"images/build.sh: {sys.argv[1]}: role must be standalone, compute or orchestrator")
print(p.get("name", role))
print(role)
print(" ".join(p.get("packages", [])))
PY
) || exit 2
PROFILE_NAME=${PROFILE_VARS[0]}
ROLE=${PROFILE_VARS[1]}
EXTRA_PACKAGES=${PROFILE_VARS[2]:-}

mkdir -p "$CACHE" "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/bacedge-image.XXXXXX")
cleanup() {
  # Mounts live in private namespaces (unshare -m): nothing to unmount here.
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'echo "images/build.sh: interrupted" >&2; exit 130' INT TERM

# Runs a command in a rootfs with /dev, /proc and /sys, in a private mount namespace (so
# nothing stays mounted, even on Ctrl-C) and, unless ONLINE=1, without network.
in_root() {
  local root=$1; shift
  local net=(--net)
  [ "${ONLINE:-0}" = 1 ] && net=()
  unshare --mount --fork "${net[@]}" sh -ec '
    root=$1; shift
    mount --rbind /dev "$root/dev"; mount -t proc proc "$root/proc"; mount -t sysfs sys "$root/sys"
    exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive $BACEDGE_CHROOT_ENV chroot "$root" "$@"' sh "$root" "$@"
}

# ---- 1. base rootfs (cached by its package lists) ----------------------------------------
PACKAGES=$(cat images/packages/base.list "images/packages/$DEBARCH.list" | sed 's/#.*//' | xargs)
PACKAGES="$PACKAGES $EXTRA_PACKAGES"
BASE_KEY=$(printf '%s\n' v1 "$SUITE" "$DEBARCH" "$MIRROR" $PACKAGES | sha256sum | cut -c1-16)
BASE="$CACHE/base-$SUITE-$DEBARCH-$BASE_KEY.tar"
T0=$(date +%s)
if [ -f "$BASE" ]; then
  step "base rootfs: cached $(basename "$BASE")"
else
  step "base rootfs: mmdebstrap $SUITE $DEBARCH ($(wc -w <<<"$PACKAGES") packages)"
  mmdebstrap --quiet --variant=minbase --arch="$DEBARCH" --components=main \
    --include="$(tr ' ' ',' <<<"$PACKAGES" | sed 's/,*$//')" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --format=tar "$SUITE" "$BASE.partial" "$MIRROR" || die "mmdebstrap of $SUITE failed (see above)"
  mv "$BASE.partial" "$BASE"
fi
BASE_S=$(($(date +%s) - T0))

# ---- 2. the .deb, built in that Debian for its Python (cached by source) -----------------
SRC_KEY=$( (git ls-files -co --exclude-standard -- edge tui packaging systemd pyproject.toml README.md docs \
  | sort | xargs sha256sum; echo "$BASE_KEY") | sha256sum | cut -c1-16)
DEB_DIR="$CACHE/deb-$DEBARCH-$SRC_KEY"
T0=$(date +%s)
if compgen -G "$DEB_DIR/bacedge_*.deb" >/dev/null; then
  step ".deb: cached $(basename "$DEB_DIR"/bacedge_*.deb)"
else
  BUILDER="$WORK/builder"
  mkdir -p "$BUILDER"
  tar -C "$BUILDER" -xf "$BASE"
  PYVER=$(in_root "$BUILDER" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  step ".deb: wheels for CPython $PYVER ($ARCH) from PyPI"
  WHEELS="$CACHE/wheels-cp$PYVER-$ARCH-$(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -d "$WHEELS" ]; then
    python3 - pyproject.toml > "$WORK/requirements.txt" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    project = tomllib.load(fh)["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["store"]))
PY
    PLATFORMS=()
    for tag in manylinux_2_35 manylinux_2_34 manylinux_2_28 manylinux_2_17 manylinux2014; do
      PLATFORMS+=(--platform "${tag}_${ARCH}")
    done
    python3 -m pip download -q --only-binary=:all: --dest "$WHEELS.partial" "${PLATFORMS[@]}" \
      --python-version "$PYVER" --implementation cp -r "$WORK/requirements.txt" 2>"$WORK/pip.log" \
      || { grep -v '^WARNING' "$WORK/pip.log" | tail -5 >&2; die "cannot download wheels for CPython $PYVER $ARCH from PyPI"; }
    python3 -m pip download -q --only-binary=:all: --dest "$WHEELS.partial" \
      pip wheel 'setuptools>=68' 2>"$WORK/pip.log" || die "cannot download pip/wheel/setuptools from PyPI"
    mv "$WHEELS.partial" "$WHEELS"
  fi
  step ".deb: packaging/build-deb.sh inside $SUITE $DEBARCH (offline)"
  cp /etc/resolv.conf "$BUILDER/etc/resolv.conf"
  ONLINE=1 in_root "$BUILDER" apt-get update -qq >/dev/null || die "apt-get update in the builder failed"
  ONLINE=1 in_root "$BUILDER" apt-get install -y -qq --no-install-recommends \
    $(sed 's/#.*//' images/packages/builder.list) >/dev/null || die "apt-get install in the builder failed"
  mkdir -p "$BUILDER/src" "$BUILDER/wheels"
  git ls-files -co --exclude-standard -- edge tui packaging systemd pyproject.toml README.md docs \
    | tar -cf - -T - | tar -C "$BUILDER/src" -xf -
  cp "$WHEELS"/* "$BUILDER/wheels/"
  BACEDGE_CHROOT_ENV="BACEDGE_DEB_COMPRESS=zstd PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1" \
    in_root "$BUILDER" bash /src/packaging/build-deb.sh >"$WORK/deb.log" 2>&1 \
    || { tail -20 "$WORK/deb.log" >&2; die "packaging/build-deb.sh failed inside $SUITE (log above)"; }
  mkdir -p "$DEB_DIR.partial"
  cp "$BUILDER"/src/dist/bacedge_*.deb "$DEB_DIR.partial/"
  rm -rf "$DEB_DIR"; mv "$DEB_DIR.partial" "$DEB_DIR"
  rm -rf --one-file-system "$BUILDER"
fi
DEB=$(ls "$DEB_DIR"/bacedge_*.deb)
DEB_S=$(($(date +%s) - T0))
# Each source change makes a new .deb: keep this one and the one before, not every one.
touch "$DEB_DIR"
ls -dt "$CACHE"/deb-"$DEBARCH"-*/ 2>/dev/null | tail -n +3 | xargs -r rm -rf --

# ---- 3. task images: busybox from the image's own busybox-static, plus --preload ---------
ROOT="$WORK/root"
mkdir -p "$ROOT"
T0=$(date +%s)
step "rootfs: base + $(basename "$DEB")"
tar -C "$ROOT" -xf "$BASE"
IMAGES="$ROOT/usr/share/bacedge/images"
mkdir -p "$IMAGES"
python3 - "$ROOT/bin/busybox" "$ARCH" "$IMAGES/busybox.tar" <<'PY' || die "cannot build the busybox task image"
import platform, shutil, sys
from pathlib import Path
sys.path.insert(0, ".")
import tests.podman_image as image
image.BUSYBOX = Path(sys.argv[1])           # the image's own busybox, of its architecture
image.CACHE_DIR = Path(sys.argv[3]).parent / ".cache"
platform.machine = lambda: sys.argv[2]      # the image config's architecture
shutil.copy(image.build_busybox_archive(), sys.argv[3])
shutil.rmtree(image.CACHE_DIR)
PY
CHECK="$WORK/podman-check"
for f in "${PRELOAD[@]}"; do
  step "preload: checking $f loads"
  out=$(podman --root "$CHECK/root" --runroot "$CHECK/run" --storage-driver vfs load -q -i "$f" 2>&1) \
    || die "--preload $f does not load as an image archive: $(tail -1 <<<"$out")"
  cp "$f" "$IMAGES/$(basename "$f")"
done
rm -rf "$CHECK"

# ---- 4. install bacedge, overlay, per-device state removed ------------------------------
cp "$DEB" "$ROOT/tmp/"
in_root "$ROOT" dpkg -i "/tmp/$(basename "$DEB")" >"$WORK/dpkg.log" 2>&1 \
  || { tail -20 "$WORK/dpkg.log" >&2; die "dpkg -i $(basename "$DEB") failed in the image"; }
rm -f "$ROOT/tmp/$(basename "$DEB")"
cp -a images/overlay/. "$ROOT/"
mkdir -p "$ROOT/usr/share/bacedge/selftest"
wat2wasm images/selftest/hello.wat -o "$ROOT/usr/share/bacedge/selftest/hello.wasm"
python3 - "$PROFILE" "$VERSION" "$ARCH" > "$ROOT/etc/bacedge/appliance.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    p = tomllib.load(fh)
print("# Written by images/build.sh: what this appliance image is; read at each boot by")
print("# `python -m edge.appliance provision`, which merges bacedge/provision.toml over it.")
print(f'profile = "{p.get("name", p["role"])}"\nrole = "{p["role"]}"')
print(f'version = "{sys.argv[2]}"\narch = "{sys.argv[3]}"')
PY
sed -n '/^\[config/,$p' "$PROFILE" | sed 's/^\[config\]$//; s/^\[config\./[/' > "$ROOT/etc/bacedge/appliance-config.toml"
UID_BACEDGE=$(in_root "$ROOT" id -u bacedge)
in_root "$ROOT" /opt/bacedge/bin/python3 -m edge.appliance enable-role "$ROLE" >/dev/null
in_root "$ROOT" systemctl enable bacedge-provision.service bacedge-appliance-health.service \
  systemd-repart.service >/dev/null 2>&1
in_root "$ROOT" systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true
in_root "$ROOT" systemctl mask getty@tty1.service serial-getty@ttyS0.service \
  serial-getty@ttyAMA0.service >/dev/null 2>&1 || true
# Nothing per device in the image: machine ID (systemd makes one on first boot and runs
# ConditionFirstBoot units), SSH host keys, NATS token, bacedge state, logs, apt lists.
: > "$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id" "$ROOT"/etc/ssh/ssh_host_* \
  "$ROOT/etc/bacedge/credentials/nats-token" "$ROOT/etc/resolv.conf"
rm -rf "$ROOT"/var/lib/bacedge/* "$ROOT"/var/log/journal/* "$ROOT"/var/lib/apt/lists/* \
  "$ROOT"/var/cache/apt/*.bin "$ROOT"/tmp/* "$ROOT"/var/tmp/*
echo "bacedge" > "$ROOT/etc/hostname"
passwd_root=$(grep '^root:' "$ROOT/etc/shadow" | cut -d: -f2)
case "$passwd_root" in '*'|'!'*|'') ;; *) die "root has a password in the image";; esac

# ---- 5. kernel, initrd and the ESP contents ----------------------------------------------
KVER=$(ls "$ROOT/lib/modules" | sort -V | tail -1)
[ -f "$ROOT/boot/initrd.img-$KVER" ] || die "no initrd for kernel $KVER in the image"
case "$ARCH" in
  x86_64) ROOT_TYPE=4f68bce3-e8cd-4db1-96e7-fbcaf984b709; CONSOLE="console=tty0 console=ttyS0,115200" ;;
  aarch64) ROOT_TYPE=b921b045-1df0-41c3-af44-4c6f280d3fae; CONSOLE="console=tty0 console=ttyAMA0,115200" ;;
esac
ROOT_UUID=$(python3 -c "import uuid; print(uuid.uuid5(uuid.NAMESPACE_URL, 'bacedge-root-$VERSION-$ARCH'))")
cat > "$ROOT/etc/fstab" <<FSTAB
# Root grows to the disk on first boot: systemd-repart (/usr/lib/repart.d) enlarges the
# partition, x-systemd.growfs the ext4 filesystem.
PARTUUID=$ROOT_UUID / ext4 rw,errors=remount-ro,x-systemd.growfs 0 1
PARTLABEL=esp /boot/efi vfat umask=0077,nofail,x-systemd.device-timeout=5min 0 2
FSTAB
mkdir -p "$ROOT/boot/efi"
ESP="$WORK/esp"
mkdir -p "$ESP/EFI/BOOT" "$ESP/loader/entries" "$ESP/bacedge"
cp "$ROOT/usr/lib/systemd/boot/efi/systemd-boot$EFI.efi" "$ESP/EFI/BOOT/BOOT${EFI^^}.EFI"
cp "$ROOT/boot/vmlinuz-$KVER" "$ESP/vmlinuz"
cp "$ROOT/boot/initrd.img-$KVER" "$ESP/initrd.img"
printf 'default bacedge.conf\ntimeout 0\nconsole-mode keep\n' > "$ESP/loader/loader.conf"
cat > "$ESP/loader/entries/bacedge.conf" <<ENTRY
title   bacedge appliance $VERSION
linux   /vmlinuz
initrd  /initrd.img
options root=PARTUUID=$ROOT_UUID rw $CONSOLE quiet systemd.show_status=error
ENTRY
cp images/provision.example.toml "$ESP/bacedge/provision.example.toml"
IMAGE_S=$(($(date +%s) - T0))

# ---- 6. manifest, rootfs tarball, raw disk -----------------------------------------------
step "manifest"
in_root "$ROOT" dpkg-query -W -f '${Package}\t${Version}\t${Architecture}\n' > "$WORK/packages.tsv"
python3 - "$WORK/packages.tsv" "$IMAGES" "$VERSION" "$ARCH" "$PROFILE_NAME" "$ROLE" "$KVER" \
  "$SUITE" "$(in_root "$ROOT" /opt/bacedge/bin/nats-server --version 2>&1 | head -1)" \
  "$(in_root "$ROOT" /opt/bacedge/bin/weed version 2>&1 | head -1)" \
  "$(in_root "$ROOT" python3 --version)" > "$OUT/$NAME.manifest.json" <<'PY'
import hashlib, json, sys, tarfile
from pathlib import Path
tsv, images, version, arch, profile, role, kernel, suite, nats, weed, python = sys.argv[1:]
pkgs = [dict(zip(("name", "version", "arch"), l.split("\t"))) for l in open(tsv).read().splitlines()]
imgs = []
for a in sorted(Path(images).glob("*.tar")):
    with tarfile.open(a) as t:
        tags = [tag for m in json.load(t.extractfile("manifest.json")) for tag in m.get("RepoTags") or []]
    imgs.append({"file": a.name, "tags": tags, "sha256": hashlib.sha256(a.read_bytes()).hexdigest()})
print(json.dumps({"name": "bacedge-appliance", "version": version, "arch": arch, "profile": profile,
    "role": role, "debian": suite, "kernel": kernel, "python": python, "nats_server": nats,
    "store_server": weed, "images": imgs, "packages": pkgs}, indent=1))
PY
step "rootfs tarball"
tar --numeric-owner --xattrs --acls -C "$ROOT" -cf - . | zstd -q -T0 -10 -f -o "$OUT/$NAME.rootfs.tar.zst"

if [ "$RAW" = yes ]; then
  step "raw GPT disk image ($SIZE, grows on first boot)"
  ESP_MB=256
  used_mb=$(du -sm --exclude=./proc --exclude=./sys "$ROOT" | cut -f1)
  root_mb=$(( $(numfmt --from=iec "$SIZE") / 1048576 - ESP_MB - 2 ))
  ((root_mb > used_mb * 12 / 10)) || die "--size $SIZE is too small for a ${used_mb} MiB rootfs"
  mkfs.vfat -n ESP -F 32 -C "$WORK/esp.img" $((ESP_MB * 1024)) >/dev/null
  (cd "$ESP" && mcopy -s -i "$WORK/esp.img" ./* ::/)
  mkfs.ext4 -q -L root -U "$(python3 -c 'import uuid; print(uuid.uuid4())')" \
    -E root_owner=0:0 -d "$ROOT" "$WORK/root.img" "${root_mb}M" >/dev/null
  truncate -s "$SIZE" "$WORK/disk.raw"
  sfdisk -q "$WORK/disk.raw" <<PART
label: gpt
first-lba: 2048
start=2048, size=$((ESP_MB * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp
start=$((2048 + ESP_MB * 2048)), size=$((root_mb * 2048)), type=$ROOT_TYPE, uuid=$ROOT_UUID, name=root
PART
  dd if="$WORK/esp.img" of="$WORK/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
  dd if="$WORK/root.img" of="$WORK/disk.raw" bs=1M seek=$((1 + ESP_MB)) conv=notrunc,sparse status=none
  mv "$WORK/disk.raw" "$OUT/$NAME.raw"
fi
(cd "$OUT" && sha256sum "$NAME".* | grep -v SHA256SUMS > SHA256SUMS.partial && mv SHA256SUMS.partial SHA256SUMS)

TOTAL=$(($(date +%s) - START))
step "done in ${TOTAL}s (base ${BASE_S}s, .deb ${DEB_S}s, image ${IMAGE_S}s)"
for f in "$OUT/$NAME".*; do
  printf '%s\t%s\t(%s on disk)\n' "$(basename "$f")" "$(du -h --apparent-size "$f" | cut -f1)" \
    "$(du -h "$f" | cut -f1)"
done

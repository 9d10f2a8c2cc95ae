#!/bin/sh
# Host setup shared by the .deb's postinst and the bundle's install.sh: the service
# user (with subuid/subgid for rootless Podman), its credentials, and the compute
# unit's view of that user's Podman socket. Idempotent.
set -e
BACEDGE=${BACEDGE:-/opt/bacedge/bin/bacedge}

if ! getent passwd bacedge >/dev/null; then
    useradd --system --user-group --create-home --home-dir /var/lib/bacedge-user \
        --shell /usr/sbin/nologin --comment "bacedge service" bacedge
fi
if ! grep -q '^bacedge:' /etc/subuid 2>/dev/null; then
    usermod --add-subuids 100000-165535 --add-subgids 100000-165535 bacedge
fi
install -d -m 0700 -o root -g root /etc/bacedge/credentials
if [ ! -s /etc/bacedge/credentials/nats-token ]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' \
        > /etc/bacedge/credentials/nats-token)
fi
# S3 secrets the units load ([storage.s3], s3managed signing): empty until an operator
# writes one; an empty credential leaves the key unset.
for name in s3-secret-key s3managed-secret-key; do
    [ -e "/etc/bacedge/credentials/$name" ] || install -m 0600 /dev/null "/etc/bacedge/credentials/$name"
done
# Rootless Podman for the service user (containers.conf, lingering, podman.socket).
# In a chroot or image build (systemd installed, not running) only enable it for boot.
offline=""
if [ ! -d /run/systemd/system ] && [ -x /lib/systemd/systemd ]; then
    offline="--offline"
fi
"$BACEDGE" setup podman --user bacedge $offline >/dev/null || \
    echo "bacedge: Podman setup incomplete; run 'bacedge setup podman --user bacedge'" >&2
# TLS certificates for the API and NATS (`bacedge setup tls`), made once on the device
# itself: never in an image build, whose copies would share one key (an appliance makes
# them at first boot). TLS stays off until config.toml names them (docs/config.md#tls).
if [ -z "$offline" ] && [ ! -e /etc/bacedge/tls/ca.pem ]; then
    if "$BACEDGE" setup tls --dir /etc/bacedge/tls >/dev/null; then
        chgrp bacedge /etc/bacedge/tls /etc/bacedge/tls/server-key.pem
        chmod 0750 /etc/bacedge/tls
        chmod 0640 /etc/bacedge/tls/server-key.pem
    else
        echo "bacedge: TLS certificates not made; run 'bacedge setup tls --dir /etc/bacedge/tls'" >&2
    fi
fi
uid=$(id -u bacedge)
install -d -m 0755 /etc/systemd/system/bacedge-compute.service.d
cat > /etc/systemd/system/bacedge-compute.service.d/podman.conf <<CONF
[Service]
BindReadOnlyPaths=-/run/user/$uid/podman
Environment=BACEDGE_COMPUTE_PODMAN_SOCKET=/run/user/$uid/podman/podman.sock
CONF
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi

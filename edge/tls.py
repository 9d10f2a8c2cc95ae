"""TLS for the API and NATS: a private CA and a server certificate (`bacedge setup tls`),
and the SSL contexts servers and clients build from them.

ECDSA P-256 keys (every TLS client speaks it); the CA is valid 10 years, the server
certificate 825 days (the most Apple clients accept) with a SubjectAltName per name.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

CA_DAYS = 3650
SERVER_DAYS = 825
FILES = ("ca.pem", "server.pem", "server-key.pem")  # the CA key is not kept: nothing signs later


class TlsError(Exception):
    """Certificates that cannot be written or loaded; the message says which and why."""


def default_names() -> list[str]:
    names = ["localhost", "127.0.0.1", "::1"]
    host = socket.gethostname()
    if host and host not in names:
        names.append(host)
    return names


def _san(name: str) -> object:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)  # O_CREAT's mode is masked by the umask, and ignored on overwrite


@dataclass(frozen=True)
class Written:
    ca: Path
    cert: Path
    key: Path

    def paths(self) -> list[Path]:
        return [self.ca, self.cert, self.key]


def generate(directory: Path, names: list[str], force: bool = False) -> Written:
    """Write ca.pem, server.pem and server-key.pem (0600) into `directory`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not names:
        raise TlsError("give at least one --name (a host name or IP address)")
    directory.mkdir(parents=True, exist_ok=True)
    out = Written(*(directory / name for name in FILES))
    existing = [str(p) for p in out.paths() if p.exists()]
    if existing and not force:
        raise TlsError(f"{', '.join(existing)} already exist: pass --force to replace them")

    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bacedge CA {names[0]}")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)  # type: ignore[misc]
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    private = {
        "encoding": pem,
        "format": serialization.PrivateFormat.PKCS8,
        "encryption_algorithm": serialization.NoEncryption(),
    }
    _write(out.ca, ca.public_bytes(pem), 0o644)
    _write(out.cert, cert.public_bytes(pem), 0o644)
    _write(out.key, key.private_bytes(**private), 0o600)  # type: ignore[arg-type]
    return out


def server_context(cert: str | Path, key: str | Path, what: str) -> ssl.SSLContext:
    """A server context for `what` (`[api]`), or a TlsError naming the files."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise TlsError(f"{what} tls_cert {cert} / tls_key {key}: cannot load: {reason}") from None
    return ctx


def client_context(cafile: str | Path, what: str) -> ssl.SSLContext:
    """A client context that trusts only `cafile`."""
    try:
        return ssl.create_default_context(cafile=str(cafile))
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise TlsError(f"{what} {cafile}: cannot load the CA: {reason}") from None


def pinned_context(cert: str | Path, what: str) -> ssl.SSLContext:
    """A client context that trusts exactly this server certificate (the orchestrator's own
    connection to its embedded NATS: no CA needed, whatever names the certificate holds)."""
    ctx = client_context(cert, what)
    ctx.check_hostname = False
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return ctx


def ensure(directory: Path, names: list[str] | None = None, group: str = "bacedge") -> bool:
    """Certificates for this device, made once (the .deb's postinst, an appliance's first
    boot): True when written now. The key is given to `group` (0640) when that group
    exists, so the services' user can read it; TLS stays off until the config names them."""
    import grp

    if (directory / "ca.pem").exists():
        return False
    out = generate(directory, default_names() + list(names or []))
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        return True
    os.chown(directory, -1, gid)
    os.chmod(directory, 0o750)
    os.chown(out.key, -1, gid)
    os.chmod(out.key, 0o640)
    return True

"""`bacedge setup tls`: the CA and server certificate it writes (names, key usage, validity,
file modes, --force) and the config keys that turn TLS on."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge.cli.main import cli
from edge.config import ConfigError, load_config
from edge.tls import CA_DAYS, SERVER_DAYS, client_context, default_names, generate, server_context


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_certificates_hold_every_name_and_the_right_usage(tmp_path: Path) -> None:
    out = generate(tmp_path, ["edge-01.lan", "10.0.0.7", "::1"])
    ca, cert = _load(out.ca), _load(out.cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["edge-01.lan"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.7"),
        ipaddress.ip_address("::1"),
    ]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.issuer == ca.subject
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    day = datetime.timedelta(days=1)
    ca_days = ca.not_valid_after_utc - ca.not_valid_before_utc
    cert_days = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert abs(ca_days - CA_DAYS * day) < day and abs(cert_days - SERVER_DAYS * day) < day
    cert.verify_directly_issued_by(ca)
    # Python's own TLS stack loads them: the server side and a client trusting the CA
    server_context(out.cert, out.key, "[api]")
    client_context(out.ca, "ca")


def test_key_is_private_and_nothing_is_overwritten_without_force(tmp_path: Path) -> None:
    out = generate(tmp_path, ["localhost"])
    assert stat.S_IMODE(out.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.ca.stat().st_mode) == 0o644
    assert not (tmp_path / "ca-key.pem").exists()  # the CA key is not kept
    before = out.cert.read_bytes()
    result = CliRunner().invoke(cli, ["setup", "tls", "--dir", str(tmp_path)])
    assert result.exit_code == 1 and "--force" in result.output
    assert out.cert.read_bytes() == before
    result = CliRunner().invoke(
        cli, ["setup", "tls", "--dir", str(tmp_path), "--force", "--name", "other.lan"]
    )
    assert result.exit_code == 0, result.output
    assert out.cert.read_bytes() != before
    assert "tls_cert" in result.output and "https://" in result.output
    assert stat.S_IMODE(out.key.stat().st_mode) == 0o600


def test_default_names_cover_loopback_and_the_host() -> None:
    names = default_names()
    assert names[:3] == ["localhost", "127.0.0.1", "::1"]


def test_a_certificate_without_its_key_names_both_keys(tmp_path: Path) -> None:
    for section in ("API", "NATS"):
        with pytest.raises(ConfigError) as err:
            load_config(None, environ={f"BACEDGE_{section}_TLS_CERT": "/x/server.pem"})
        text = str(err.value)
        assert f"{section.lower()}.tls_cert" in text and f"{section.lower()}.tls_key" in text


def test_loading_bad_files_names_them(tmp_path: Path) -> None:
    from edge.tls import TlsError

    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(TlsError, match=r"junk\.pem"):
        server_context(tmp_path / "junk.pem", tmp_path / "junk.pem", "[api]")
    with pytest.raises(TlsError, match=r"missing\.pem"):
        client_context(tmp_path / "missing.pem", "[nats] cacert")
    assert isinstance(client_context(generate(tmp_path, ["x"]).ca, "ca"), ssl.SSLContext)


def test_ensure_makes_them_once_for_the_device(tmp_path: Path) -> None:
    from edge.tls import ensure

    directory = tmp_path / "tls"
    assert ensure(directory, ["edge-07"], group="no-such-group-here")
    cert = _load(directory / "server.pem")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "edge-07" in san.get_values_for_type(x509.DNSName)
    assert stat.S_IMODE((directory / "server-key.pem").stat().st_mode) == 0o600
    before = (directory / "ca.pem").read_bytes()
    assert not ensure(directory)  # a later boot or upgrade keeps them
    assert (directory / "ca.pem").read_bytes() == before


def test_appliance_first_boot_makes_certificates_per_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge.appliance import provision

    source = tmp_path / "provision.toml"
    source.write_text('[node]\nname = "cam-2"\n')
    monkeypatch.setenv("BACEDGE_PROVISION_FILE", str(source))
    cas = []
    for device in ("a", "b"):
        etc = tmp_path / device / "etc"
        etc.mkdir(parents=True)
        (etc / "appliance.toml").write_text('profile = "standalone"\nrole = "standalone"\n')
        assert provision.run(etc, tmp_path / device / "run", host=False)["ok"]
        cert = _load(etc / "tls" / "server.pem")
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "cam-2" in san.get_values_for_type(x509.DNSName)
        cas.append((etc / "tls" / "ca.pem").read_bytes())
        provision.run(etc, tmp_path / device / "run", host=False)  # a reboot keeps them
        assert (etc / "tls" / "ca.pem").read_bytes() == cas[-1]
    assert cas[0] != cas[1], "each device has its own CA"

"""
A development certificate, so the shipped configuration runs as it is.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.logger import Logger

from smartdiscover.config.model import Model

VALIDITY = datetime.timedelta(days=365)

_log = Logger(namespace="smartdiscover")


def ensure_development_certificate(model: Model) -> None:
    """
    Create the development certificate at the configured paths when both
    the certificate and its key are missing.
    """
    https = model.https
    if https.certificate.exists() or https.private_key.exists():
        return
    names = development_names(model.public_hostname, model.domains, own_hostnames(model))
    create_development_certificate(https.certificate, https.private_key, names)
    _log.warn("created a self-signed development certificate for {names} at "
              "{certificate} (key: {key}); configure a real one for production",
              names=", ".join(names), certificate=str(https.certificate),
              key=str(https.private_key))


def development_names(public_hostname: str, domains: tuple[str, ...],
                      hostnames: tuple[str, ...] = ()) -> list[str]:
    """
    The names a development certificate covers: the public host name, and
    autodiscover.<domain>, autoconfig.<domain> (where plain HTTP sends
    autoconfig clients) and <domain> for every served domain, then
    C{hostnames} (the domains' own public host names).
    """
    names = [public_hostname]
    for domain in domains:
        names += [f"autodiscover.{domain}", f"autoconfig.{domain}", domain]
    return list(dict.fromkeys([*names, *hostnames]))


def own_hostnames(model: Model) -> tuple[str, ...]:
    """
    The public host names of the served domains ([domain:] overrides).
    """
    return tuple(model.catalogue_for(domain).public_hostname for domain in model.domains)


def create_development_certificate(certificate: Path, private_key: Path,
                                   names: list[str]) -> None:
    """
    Write a self-signed ECDSA P-256 certificate for C{names} (and loopback)
    and its key; the key file is readable by its owner only.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                            "SmartDiscover development")])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    alt_names += [x509.DNSName("localhost"),
                  x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                  x509.IPAddress(ipaddress.ip_address("::1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False,
                                     decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    private_key.parent.mkdir(parents=True, exist_ok=True)
    certificate.parent.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(private_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file existed with a wider mode
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

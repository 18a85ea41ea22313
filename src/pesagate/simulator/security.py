"""The simulator's own M-Pesa key pair: a self-signed certificate that it hands out where
Safaricom publishes its sandbox certificate, and the private key that decrypts the
SecurityCredentials encrypted with it.

Made once per simulator, on first use (an RSA key takes a noticeable fraction of a second, and
most simulators never see an initiator API)."""

import base64
import binascii
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

KEY_BITS = 2048  # Safaricom's certificates carry 2048-bit keys (a 344-character credential)


class UnreadableCredential(ValueError):
    """Not base64, or not encrypted with this simulator's certificate."""


class SimulatorKeys:
    def __init__(self) -> None:
        self._key: rsa.RSAPrivateKey | None = None
        self._certificate_pem: bytes | None = None

    @property
    def certificate_pem(self) -> bytes:
        if self._certificate_pem is None:
            self._certificate_pem = _self_signed(self._private_key())
        return self._certificate_pem

    def decrypt(self, credential: str) -> str:
        try:
            encrypted = base64.b64decode(credential.strip(), validate=True)
            return self._private_key().decrypt(encrypted, padding.PKCS1v15()).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise UnreadableCredential from None

    def _private_key(self) -> rsa.RSAPrivateKey:
        if self._key is None:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        return self._key


def _self_signed(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pesagate Daraja simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, "apicrypt.simulator.invalid"),
        ]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)

"""Daraja's SecurityCredential: the initiator password encrypted with M-Pesa's public
certificate, RSA with PKCS#1 v1.5 padding, base64 (next-capabilities.md section 2.3).

The raw password bytes are encrypted, as the libraries that work against the real service do
(not their base64). PKCS#1 v1.5 is randomised: one password gives a different credential each
time, so only decryption can check one (the simulator does).
"""

import base64

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class CertificateError(ValueError):
    """The certificate cannot encrypt a credential (not PEM or DER X.509, or not RSA)."""


def load_public_key(certificate: bytes) -> rsa.RSAPublicKey:
    """The RSA key of an X.509 certificate given as PEM (Safaricom's .cer files) or DER."""
    try:
        if b"-----BEGIN" in certificate:
            cert = x509.load_pem_x509_certificate(certificate)
        else:
            cert = x509.load_der_x509_certificate(certificate)
    except ValueError as exc:
        raise CertificateError(f"not an X.509 certificate: {exc}") from None
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise CertificateError("the certificate's key is not RSA")
    return key


def security_credential(password: str, key: rsa.RSAPublicKey) -> str:
    """base64(RSA-PKCS#1 v1.5(password)) with the certificate's public key."""
    encrypted = key.encrypt(password.encode(), padding.PKCS1v15())
    return base64.b64encode(encrypted).decode("ascii")

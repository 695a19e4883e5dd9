"""A throwaway certificate authority and broker certificate for the local Kafka (SASL_SSL / SSL).

Made with the ``openssl`` command line (no Python dependency): an EC P-256 CA and a broker
certificate it signs, valid for ``localhost`` and ``127.0.0.1`` (clients verify the host
name). The broker reads them as PEM stores (Kafka 3.3+ accepts an unencrypted PEM key):

    <dir>/ca.pem          the CA certificate: clients trust this (FRAUDAPP_SSL_CAFILE)
    <dir>/ca.key          the CA's private key (only used here, to sign)
    <dir>/broker.pem      the broker's private key followed by its certificate chain
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TlsError", "TlsFiles", "make_certificates"]

DAYS = 3650
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


class TlsError(RuntimeError):
    """openssl is missing or failed; the message says which step."""


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    keystore: Path


def _openssl(args: list[str], cwd: Path, what: str) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise TlsError("openssl not found on PATH: needed to make the local broker's TLS certificate")
    try:
        proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TlsError(f"openssl did not finish {what} in 60 s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
        raise TlsError(f"openssl failed {what} (exit {proc.returncode})\n{tail}")


def make_certificates(directory: Path) -> TlsFiles:
    """Create (or reuse, when complete) the CA and broker certificate in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "broker.pem")
    if files.ca.is_file() and files.keystore.is_file():
        return files
    directory.chmod(0o700)
    _openssl(
        ["req", "-x509", *_EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", str(DAYS),
         "-subj", "/CN=fraudapp local Kafka CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        directory, "making the CA",
    )  # fmt: skip
    _openssl(
        ["req", *_EC, "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=localhost"],
        directory, "making the broker key",
    )  # fmt: skip
    (directory / "broker.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
    )
    _openssl(
        ["x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "broker.crt", "-days", str(DAYS), "-extfile", "broker.ext"],
        directory, "signing the broker certificate",
    )  # fmt: skip
    # Kafka's PEM key store: the private key (PKCS#8), then the certificate chain.
    chain = [(directory / name).read_text() for name in ("broker.key", "broker.crt", "ca.pem")]
    files.keystore.write_text("".join(chain))
    for name in ("ca.key", "broker.pem"):
        (directory / name).chmod(0o600)
    for name in ("broker.key", "broker.csr", "broker.ext", "ca.srl"):
        (directory / name).unlink(missing_ok=True)
    return files

"""Keys and certificates from the environment, or from the files it names (``NAME_FILE``), loaded once.

Split from ``graph.config`` (which re-exports ``ConfigError`` and ``CERT_FILES``): every problem is a ``ConfigError``
naming the variable, and no message quotes a secret's value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from graph.gateway import aes
from graph.gateway.certs import CertLoadError, CertSNs, load_cert_mode
from graph.gateway.credentials import Credentials
from graph.gateway.keys import KeyLoadError, load_private_key, load_public_key
from graph.gateway.signing import SignType

CERT_FILES = ("ALIPAY_APP_CERT_FILE", "ALIPAY_PUBLIC_CERT_FILE", "ALIPAY_ROOT_CERT_FILE")


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names the variable."""


def secret(env: Mapping[str, str], name: str) -> tuple[str, str]:
    """A key from ``NAME`` or the file named by ``NAME_FILE`` (files keep keys out of the process environment)."""
    found = optional_secret(env, name)
    if found is None:
        raise ConfigError(f"{name} (or {name}_FILE) is required unless --demo")
    return found


def optional_secret(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    inline, path = env.get(name, "").strip(), env.get(f"{name}_FILE", "").strip()
    if inline and path:
        raise ConfigError(f"{name} and {name}_FILE: set one, not both")
    if path:
        return read(path, f"{name}_FILE"), f"{name}_FILE"
    return (inline, name) if inline else None


def read(path: str, name: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read {path} ({type(exc).__name__})") from None


def credentials(env: Mapping[str, str], protocol: str) -> Credentials:
    app_id = env.get("ALIPAY_APP_ID", "").strip()
    if not app_id:
        raise ConfigError("ALIPAY_APP_ID is required unless --demo")
    if not re.fullmatch(r"[0-9]{1,32}", app_id):
        raise ConfigError("ALIPAY_APP_ID: expected the app's numeric id (at most 32 digits)")
    sign_type_raw = env.get("ALIPAY_SIGN_TYPE", "RSA2").strip().upper() or "RSA2"
    try:
        sign_type = SignType(sign_type_raw)
    except ValueError:
        raise ConfigError("ALIPAY_SIGN_TYPE: expected RSA2 or RSA") from None
    if protocol == "v3" and sign_type is not SignType.RSA2:
        raise ConfigError("ALIPAY_SIGN_TYPE: the v3 protocol signs with RSA2 only (unset it or set RSA2)")
    cert_files = {name: env.get(name, "").strip() for name in CERT_FILES}
    try:
        private_key = load_private_key(*secret(env, "ALIPAY_APP_PRIVATE_KEY"))
        if any(cert_files.values()):
            public_key, certs = _cert_mode(env, cert_files, private_key)
        else:
            public_key, certs = load_public_key(*secret(env, "ALIPAY_PUBLIC_KEY")), None
        encrypt = optional_secret(env, "ALIPAY_ENCRYPT_KEY")
        encrypt_key = None if encrypt is None else aes.load_key(*encrypt)
    except (KeyLoadError, CertLoadError, aes.AesKeyError) as exc:
        raise ConfigError(str(exc)) from None
    return Credentials(app_id, private_key, public_key, sign_type, certs=certs, encrypt_key=encrypt_key)


def _cert_mode(
    env: Mapping[str, str], files: Mapping[str, str], private_key: rsa.RSAPrivateKey
) -> tuple[rsa.RSAPublicKey, CertSNs]:
    """Certificate mode (公钥证书模式): all three files, and no public key beside them."""
    if env.get("ALIPAY_PUBLIC_KEY", "").strip() or env.get("ALIPAY_PUBLIC_KEY_FILE", "").strip():
        raise ConfigError(
            "ALIPAY_PUBLIC_KEY and ALIPAY_*_CERT_FILE: set Alipay's public key or the three certificates, not both"
        )
    missing = [name for name, path in files.items() if not path]
    if missing:
        raise ConfigError(f"certificate mode needs {', '.join(CERT_FILES)}; not set: {', '.join(missing)}")
    texts = {name: read(path, name) for name, path in files.items()}
    certs, alipay_key = load_cert_mode(
        texts["ALIPAY_APP_CERT_FILE"],
        texts["ALIPAY_PUBLIC_CERT_FILE"],
        texts["ALIPAY_ROOT_CERT_FILE"],
        private_key,
        now=datetime.now(UTC),
    )
    return alipay_key, certs

"""Password hashes with the standard library only: scrypt with a random salt per password, compared in
constant time. The clear password is never stored, returned or logged."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SCHEME = "scrypt"
# scrypt's cost: 2**14 blocks of 8 x 128 bytes (16 MB, about 50 ms): OWASP's minimum is N=2**17 with r=8 for
# interactive logins; 2**14 keeps a sign-in snappy on a small server while a stolen hash still costs real time.
N, R, P, KEY_BYTES, SALT_BYTES = 2 ** 14, 8, 1, 32, 16
MAX_MEMORY = 64 * 1024 * 1024
MIN_LENGTH, MAX_LENGTH = 8, 1000


def _derive(password: str, *, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=MAX_MEMORY)


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$<salt hex>$<key hex>``: the parameters travel with the hash, so they can be raised later."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt=salt, n=N, r=R, p=P, length=KEY_BYTES)
    return f"{SCHEME}${N}${R}${P}${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``. With no stored hash (an unknown user) a dummy hash is still
    computed, so the answer takes as long as for a known user with a wrong password."""
    try:
        scheme, n, r, p, salt_hex, key_hex = (stored or "").split("$")
        if scheme != SCHEME:
            raise ValueError(scheme)
        salt, key, params = bytes.fromhex(salt_hex), bytes.fromhex(key_hex), (int(n), int(r), int(p))
    except ValueError:
        _derive(password, salt=b"\0" * SALT_BYTES, n=N, r=R, p=P, length=KEY_BYTES)
        return False
    found = _derive(password, salt=salt, n=params[0], r=params[1], p=params[2], length=len(key))
    return hmac.compare_digest(found, key)

"""The customer-service console's login: scrypt password hashes and HTTP Basic credentials.

A password is never stored, only its hash, as one self-describing string: ``scrypt$N$r$p$<salt>$<hash>`` (the
scrypt cost parameters, then the random salt and the derived key in standard base64). ``concierge hash-password``
prints one for ``[server] console_password_hash``. Checking a password derives the key again with the stored
parameters and compares in constant time.

:class:`BasicLogin` checks HTTP Basic credentials against the one configured login (so a browser's login dialog,
curl's ``-u`` and Playwright's ``http_credentials`` all work). Failed logins are counted per client address with a
:class:`ui.limits.RateLimiter`: once a client is over ``failures_per_minute``, every login from it is refused
(:class:`LoginRefused`, 429) until its bucket has a token again, the right password included, so guessing stays
that slow.

Example:
    >>> hashed = hash_password("correct horse battery", n=2**10)
    >>> hashed.startswith("scrypt$1024$8$1$"), verify_password("correct horse battery", hashed)
    (True, True)
    >>> verify_password("wrong", hashed)
    False
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ui.limits import RateLimiter

SCHEME = "scrypt"
# The cost OWASP names for scrypt (N=2^14, r=8, p=1): about 16 MiB and tens of milliseconds a check.
DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
MIN_PASSWORD_CHARS = 8
# A hash asking for more memory than this is refused when it is read: checking it would hold that much per login.
MAX_SCRYPT_BYTES = 256 * 1024 * 1024
REALM = "Concierge console"


class PasswordHashError(ValueError):
    """A password hash string that cannot be read; the message says which part is wrong."""


@dataclass(frozen=True)
class PasswordHash:
    """A parsed ``scrypt$N$r$p$<salt>$<hash>`` string (see the module docstring)."""

    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def __str__(self) -> str:
        salt, key = (base64.b64encode(b).decode("ascii") for b in (self.salt, self.key))
        return f"{SCHEME}${self.n}${self.r}${self.p}${salt}${key}"

    def matches(self, password: str) -> bool:
        """Whether ``password`` derives this key (compared in constant time)."""
        return hmac.compare_digest(
            _derive(password, self.salt, self.n, self.r, self.p, len(self.key)), self.key
        )


def parse_password_hash(text: str) -> PasswordHash:
    """The parts of a hash string.

    Raises:
        PasswordHashError: Not six ``$``-separated parts, another scheme, cost parameters scrypt refuses (N a
            power of two above 1) or that ask for more than :data:`MAX_SCRYPT_BYTES`, or a salt or key that is not
            base64.

    Example:
        >>> parse_password_hash("scrypt$1024$8$1$c2FsdA==$a2V5a2V5a2V5a2V5a2V5aw==").n
        1024
        >>> parse_password_hash("hunter2")
        Traceback (most recent call last):
        ...
        ui.auth.PasswordHashError: not a password hash: expected scrypt$N$r$p$<salt base64>$<hash base64>, got 1 part
    """
    parts = text.split("$") if isinstance(text, str) else []
    if len(parts) != 6:
        raise PasswordHashError(
            f"not a password hash: expected {SCHEME}$N$r$p$<salt base64>$<hash base64>, "
            f"got {len(parts)} part{'s' if len(parts) != 1 else ''}"
        )
    scheme, n_text, r_text, p_text, salt_text, key_text = parts
    if scheme != SCHEME:
        raise PasswordHashError(f"the scheme is {scheme!r}; only {SCHEME!r} is read")
    try:
        n, r, p = int(n_text), int(r_text), int(p_text)
    except ValueError:
        raise PasswordHashError(
            f"N, r and p must be whole numbers, got {n_text!r}, {r_text!r}, {p_text!r}"
        ) from None
    if n < 2 or n & (n - 1) or r < 1 or p < 1:
        raise PasswordHashError(
            f"scrypt needs N a power of two above 1 and r, p of at least 1; got {n}, {r}, {p}"
        )
    if _memory(n, r, p) > MAX_SCRYPT_BYTES:
        raise PasswordHashError(
            f"N={n}, r={r}, p={p} needs more than {MAX_SCRYPT_BYTES // 2**20} MiB a check"
        )
    try:
        salt, key = (base64.b64decode(part, validate=True) for part in (salt_text, key_text))
    except (binascii.Error, ValueError):
        raise PasswordHashError("the salt and the hash must be standard base64") from None
    if not salt or len(key) < 16:
        raise PasswordHashError(f"the salt is empty or the hash shorter than 16 bytes ({len(key)})")
    return PasswordHash(n, r, p, salt, key)


def hash_password(password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P) -> str:
    """The hash string of ``password`` with a fresh random salt.

    Raises:
        ValueError: A password shorter than :data:`MIN_PASSWORD_CHARS` characters.
    """
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"a console password needs at least {MIN_PASSWORD_CHARS} characters")
    salt = secrets.token_bytes(SALT_BYTES)
    return str(PasswordHash(n, r, p, salt, _derive(password, salt, n, r, p, KEY_BYTES)))


def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` is the one ``hashed`` was made from.

    Raises:
        PasswordHashError: ``hashed`` cannot be read.
    """
    return parse_password_hash(hashed).matches(password)


class LoginRefused(Exception):
    """A request the console does not serve: no login configured (503), no or wrong credentials (401), or too
    many failed logins from its address (429, ``retry_after`` seconds)."""

    def __init__(self, status: int, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        if self.status == 401:
            return {"WWW-Authenticate": f'Basic realm="{REALM}"'}
        if self.status == 429:
            return {"Retry-After": str(self.retry_after)}
        return {}


class BasicLogin:
    """Checks HTTP Basic credentials against one user and password hash (see the module docstring).

    The scrypt check runs once for the right credentials; later requests (the console refreshes every few
    seconds) compare a SHA-256 of them with the one that passed.

    Args:
        user: The user name; with ``password_hash``, ``""`` turns the login off (every request gets 503).
        password_hash: A :func:`hash_password` string.
        failures_per_minute: Failed logins one client address may make a minute.
        clock: Seconds, for the limiter and the blocks (a test's clock).
    """

    def __init__(
        self,
        user: str,
        password_hash: str,
        failures_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = bool(user and password_hash)
        self._user = user.encode("utf-8")
        self._hash = parse_password_hash(password_hash) if password_hash else None
        self._failures = RateLimiter(failures_per_minute, clock=clock)
        self._clock = clock
        self._lock = threading.Lock()
        # client address -> when its logins are taken again (only clients over the limit, dropped once passed)
        self._blocked: dict[str, float] = {}
        self._passed: bytes | None = None

    def check(self, authorization: str | None, client: str) -> str:
        """The user of a request's ``Authorization`` header from ``client``'s address.

        Raises:
            LoginRefused: 503, 401 or 429 (see the class).
        """
        if not self.enabled:
            raise LoginRefused(
                503,
                "The console is off: no login is configured. Set [server] console_user and "
                "console_password_hash in concierge.toml (or CONCIERGE_SERVER_CONSOLE_USER and "
                "CONCIERGE_SERVER_CONSOLE_PASSWORD_HASH); `concierge hash-password` prints the hash.",
            )
        wait = self._blocked_for(client)
        if wait:
            raise LoginRefused(429, f"Too many failed logins; try again in {wait} s.", wait)
        credentials = basic_credentials(authorization)
        if credentials is None:
            raise LoginRefused(401, "Log in to the Concierge console.")
        user, password = credentials
        if self._right(user, password):
            return user
        wait = self._failures.take(client)
        if wait:
            seconds = math.ceil(wait)
            with self._lock:
                self._blocked[client] = self._clock() + seconds
            raise LoginRefused(429, f"Too many failed logins; try again in {seconds} s.", seconds)
        raise LoginRefused(401, "Wrong user name or password.")

    def _right(self, user: str, password: str) -> bool:
        seen = hashlib.sha256(b"%b\0%b" % (user.encode("utf-8"), password.encode("utf-8"))).digest()
        passed = self._passed
        if passed is not None and hmac.compare_digest(seen, passed):
            return True
        # Both are checked whatever the user name, so a wrong name takes as long as a wrong password.
        user_right = hmac.compare_digest(user.encode("utf-8"), self._user)
        if self._hash.matches(password) and user_right:
            self._passed = seen
            return True
        return False

    def _blocked_for(self, client: str) -> int:
        with self._lock:
            now = self._clock()
            for address in [a for a, until in self._blocked.items() if until <= now]:
                del self._blocked[address]
            until = self._blocked.get(client)
        return math.ceil(until - now) if until is not None else 0


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """``(user, password)`` of an ``Authorization: Basic ...`` header (UTF-8), ``None`` when it is not one.

    Example:
        >>> basic_credentials("Basic " + base64.b64encode(b"maria:s3cret:x").decode())
        ('maria', 's3cret:x')
        >>> basic_credentials("Bearer abc") is None, basic_credentials(None) is None
        (True, True)
    """
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.casefold() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def _memory(n: int, r: int, p: int) -> int:
    return 128 * r * (n + p + 2)


def _derive(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # OpenSSL refuses more than 32 MiB unless told: the limit is what these parameters need, with room.
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_memory(n, r, p) + 2**20, dklen=length
    )

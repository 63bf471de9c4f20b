"""Credentials out of everything generate stores or prints: the one redaction function, and URLs with a password.

Servers put request text in their error bodies; some echo the request headers (an API key, a basic-auth header).
Every writer of server text (a trace's error, a warning, a `GenerateError` message, hence the report, the manifest
and the console) passes it through `redact` first:

    redact('HTTP 400: {"headers": {"Authorization": "Bearer sk-live-1234"}}', secrets=["sk-live-1234"])
    # 'HTTP 400: {"headers": {"Authorization": "Bearer ***"}}'

It removes the values it is told are secret (the configured key, basic-auth passwords, their encoded forms), then
whatever looks like one: the value of an Authorization / API-key header (Bearer or Basic), a Bearer credential
anywhere, OpenAI- and Hugging Face-style tokens (`sk-...`, `hf_...`), and the password of a `user:password@` URL.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
#: Known secrets shorter than this are not searched for (they would mask ordinary words).
_MIN_SECRET = 4

_HEADER = re.compile(r"""(?ix)
    ((?:proxy-)?authorization|x-api-key|api[-_]?key|access[-_]?token)   # the header or field name
    (["']?\s*[:=]\s*["']?)                                              # its separator, quoted or not
    (?:(bearer|basic|token)\s+)?                                        # a scheme, kept
    [^\s"',;}\]]+                                                       # the credential
""")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
_TOKEN = re.compile(r"\b(sk-|hf_|ghp_|gho_|github_pat_|xox[abp]-)[A-Za-z0-9_-]{6,}")
_USERINFO = re.compile(r"(?<=://)([^/@\s:]*):[^/@\s]*@")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every secret in `secrets` and every credential-like value replaced by ***."""
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _HEADER.sub(lambda m: f"{m[1]}{m[2]}{m[3] + ' ' if m[3] else ''}{MASK}", text)
    text = _BEARER.sub(lambda m: f"{m[1]} {MASK}", text)
    text = _TOKEN.sub(lambda m: f"{m[1]}{MASK}", text)
    return _USERINFO.sub(lambda m: f"{m[1]}:{MASK}@", text)


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """(the URL without `user:password@`, (user, password) or None). The password is percent-decoded."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc)), (unquote(parts.username or ""), unquote(parts.password or ""))


def shown_url(url: str) -> str:
    """The URL as it may be printed or stored: `http://user:***@host/v1` when it carries a password."""
    return _USERINFO.sub(lambda m: f"{m[1]}:{MASK}@", url)


def secrets_of(api_key: str | None, urls: Iterable[str]) -> tuple[str, ...]:
    """The values `redact` must remove for this run: the key, each URL's password (as written and decoded) and the
    basic-auth header value made from it."""
    found = [api_key] if api_key else []
    for url in urls:
        _, credentials = split_credentials(url)
        if credentials is None:
            continue
        user, password = credentials
        raw = urlsplit(url).password or ""
        found += [password, raw, base64.b64encode(f"{user}:{password}".encode()).decode()]
    return tuple(s for s in found if s)


__all__ = ["MASK", "redact", "secrets_of", "shown_url", "split_credentials"]

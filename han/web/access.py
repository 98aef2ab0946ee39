"""Who may read the live page: where it listens, the token, and the check of each request.

Rules (README, "Live page"):

* a loopback address (127.0.0.0/8, ::1, localhost) needs no token;
* any other address needs one, from ``--http-token``, ``HAN_HTTP_TOKEN`` or the
  systemd credential ``$CREDENTIALS_DIRECTORY/han-http-token``; without one
  ``han run`` exits 2 with one line;
* a token that is set is always required, on loopback too;
* a request shows it as ``Authorization: Bearer <token>`` or in the cookie
  ``han_token`` that ``GET /login?token=...`` sets (HttpOnly, SameSite=Strict).

Comparisons are constant-time (:func:`hmac.compare_digest`).  The token never
appears in a message, a log line or a response.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping
from typing import NamedTuple

ENVIRONMENT = "HAN_HTTP_TOKEN"
CREDENTIAL = "han-http-token"
COOKIE = "han_token"
#: shorter tokens work but draw a warning in the log
SHORT = 16


class TokenError(Exception):
    """No usable token (one line, naming where it came from)."""


class Listen(NamedTuple):
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in ("0.0.0.0", "::", ""):
            host = "localhost"
        return f"http://{host}:{self.port}/"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost: it may resolve to anything


def parse_listen(text: str) -> Listen:
    """``HOST:PORT``, ``[v6]:PORT`` or a port alone (loopback); ValueError in one line."""
    text = text.strip()
    host, port_text = "127.0.0.1", text
    if text.startswith("["):
        inside, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"{text!r} is not HOST:PORT (an IPv6 address goes in brackets: [::1]:8080)")
        host, port_text = inside, rest[1:]
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
        if ":" in host:
            raise ValueError(f"{text!r} is not HOST:PORT (an IPv6 address goes in brackets: [::1]:8080)")
    if not host:
        raise ValueError(f"{text!r} has no host: give 127.0.0.1:{port_text} (this machine) or 0.0.0.0:{port_text} (every address)")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535")
    return Listen(host, int(port_text))


def token_from(flag: str | None, environ: Mapping[str, str]) -> str | None:
    """The token: the command line, else the environment, else the systemd credential."""
    for value, where in ((flag, "--http-token"), (environ.get(ENVIRONMENT), ENVIRONMENT)):
        if value is not None:
            return _checked(value, where)
    cred_dir = environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        path = os.path.join(cred_dir, CREDENTIAL)
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as fh:
                    return _checked(fh.read(), f"credential {path}")
            except (OSError, UnicodeDecodeError) as exc:
                raise TokenError(f"credential {path} cannot be read ({type(exc).__name__})") from None
    return None


def _checked(value: str, where: str) -> str:
    token = value.strip()
    if not token:
        raise TokenError(f"{where} is empty")
    if not (token.isascii() and token.isprintable()) or any(c in token for c in ' ;,"\\'):
        raise TokenError(f"{where}: the token must be printable ASCII, without spaces, quotes, ; , or \\")
    return token


def check_listen(where: Listen, token: str | None) -> None:
    if token is None and not where.loopback:
        raise TokenError(
            f"{where.host} is not a loopback address: set a token (HAN_HTTP_TOKEN, the systemd credential"
            f" {CREDENTIAL}, or --http-token), or listen on 127.0.0.1"
        )


def same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8"))


def cookie_value(header: str, name: str = COOKIE) -> str | None:
    """The value of cookie ``name`` in a Cookie header."""
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


def allowed(token: str | None, headers: Mapping[str, str]) -> bool:
    """The request shows the token (a bearer header or the cookie), or none is needed."""
    if token is None:
        return True
    auth = headers.get("authorization", "")
    scheme, _, given = auth.partition(" ")
    if scheme.lower() == "bearer" and same(given.strip(), token):
        return True
    cookie = cookie_value(headers.get("cookie", ""))
    return cookie is not None and same(cookie, token)


def login_cookie(token: str) -> str:
    """The Set-Cookie value of a successful /login (a year; the page's scripts cannot read it)."""
    return f"{COOKIE}={token}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Strict"

"""Sans-I/O admission of a connection to the embedded server: token, model and dialect checks.

Like the service, the embedded server accepts every WebSocket upgrade on its endpoint and
only then judges the request: a bad or missing bearer token gets an ``error`` event and
close code 3000, a missing ``?model=`` close code 4000, as the real service does. The close
reason is ``error.type.code``.

Azure's shape is accepted too, so Azure clients can be tested offline: the path
``/openai/realtime``, the model as ``?deployment=`` and the key in an ``api-key`` header
(what ``AsyncAzureOpenAI`` sends).

Dialect: a GA server (the default) refuses that header as the GA service does
(``beta_api_shape_disabled``, close 4000); a beta server always speaks beta; a server
started for ``auto`` speaks beta to clients that send ``OpenAI-Beta: realtime=v1`` and GA
to the others.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

from rt_notebook.protocol.events import Dialect
from rt_notebook.server import errors
from rt_notebook.server.errors import ErrorInfo

__all__ = [
    "ENDPOINT",
    "Admitted",
    "Rejected",
    "admit",
    "exposure_warning",
    "is_endpoint",
    "is_loopback",
    "new_token",
]

ENDPOINT = "/v1/realtime"
AZURE_ENDPOINT = "/openai/realtime"
CLOSE_AUTH = 3000
CLOSE_REQUEST = 4000


@dataclasses.dataclass(frozen=True)
class Admitted:
    """The connection may proceed in ``dialect`` with ``model``."""

    dialect: Dialect
    model: str


@dataclasses.dataclass(frozen=True)
class Rejected:
    """Send ``error`` as an event, then close with ``close_code`` and ``error.close_reason``."""

    error: ErrorInfo
    close_code: int


def new_token() -> str:
    """A fresh random bearer token for one server start."""
    return "rtnb-" + secrets.token_urlsafe(24)


def is_endpoint(path: str) -> bool:
    """Whether a request path (query included) addresses the Realtime endpoint."""
    return urlsplit(path).path.rstrip("/") in (ENDPOINT, AZURE_ENDPOINT)


def admit(
    path: str, headers: Mapping[str, str], *, token: str, dialect: Dialect | None
) -> Admitted | Rejected:
    """Judge an upgraded request; ``headers`` must look names up case-insensitively."""
    presented = _presented_key(headers)
    if not presented:
        return Rejected(errors.invalid_api_key(missing=True), CLOSE_AUTH)
    if not hmac.compare_digest(presented.encode(), token.encode()):
        return Rejected(errors.invalid_api_key(missing=False), CLOSE_AUTH)

    query = parse_qs(urlsplit(path).query)
    models = query.get("model") or query.get("deployment") or []
    if not models or not models[0].strip():
        return Rejected(errors.missing_model(), CLOSE_REQUEST)

    wants_beta = "realtime=v1" in headers.get("OpenAI-Beta", "").replace(" ", "")
    if dialect is Dialect.GA and wants_beta:
        return Rejected(errors.beta_shape_disabled(), CLOSE_REQUEST)
    if dialect is None:
        dialect = Dialect.BETA if wants_beta else Dialect.GA
    return Admitted(dialect=dialect, model=models[0].strip())


def _presented_key(headers: Mapping[str, str]) -> str:
    """The key a client sent: ``Authorization: Bearer …`` or Azure's ``api-key`` header."""
    scheme, _, bearer = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and bearer.strip():
        return bearer.strip()
    return headers.get("api-key", "").strip()


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` serves this machine only (``localhost``, 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a name, or "" (every interface): it may reach the network
        return False


def exposure_warning(host: str) -> str:
    """What to tell someone binding a ``host`` that is not loopback."""
    return (
        f"warning: --host {host or '(every interface)'} serves beyond this machine: anyone "
        "who can reach it and knows the token can use this server, and the traffic (token "
        "included) is not encrypted (ws://). Use --host 127.0.0.1 unless that is what you want."
    )

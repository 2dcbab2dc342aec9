"""Base layer, credential redaction: keys scrubbed from any text, data or log record that
leaves the kernel.

Two rules, applied by :func:`scrub`:

- every secret passed to :func:`register_secret` (the API keys a Session was given) is
  replaced by ``***`` wherever it appears;
- the value of anything that looks like a credential header or setting
  (``Authorization: Bearer …``, ``api-key: …``, ``api_key='…'``, ``OPENAI_API_KEY=…``) is
  replaced by ``***`` even if nobody registered it.

:func:`install_log_filter` adds a filter with the same rules to the ``websockets`` and
``openai`` loggers and their children, so that a user's own DEBUG logging (which makes
websockets print every request header) shows no key. It is installed when a Session
connects (:func:`~rt_notebook.client.transport.open_connection`), not at import.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from typing import Any

__all__ = [
    "LOGGERS",
    "RedactingFilter",
    "Secret",
    "install_log_filter",
    "install_traceback_filter",
    "register_secret",
    "scrub",
    "scrub_bytes",
    "scrub_data",
]

# Loggers whose records may carry request headers or client settings.
LOGGERS = ("websockets", "openai")
# Their children that exist before anything logs (getLogger returns these same objects
# when the libraries create them later): a logger's filters see only its own records.
_KNOWN_CHILDREN = (
    "websockets.client",
    "websockets.server",
    "openai._base_client",
    "openai.resources.realtime.realtime",
    "openai.resources.beta.realtime.realtime",
)
# Shortest string registered as a secret (shorter ones would scrub ordinary words).
_MIN_SECRET = 8

_secrets: set[str] = set()
_lock = threading.Lock()

# A credential's name, its separator and optional scheme; group 2 is the value.
# (The error code's label ``invalid_api_key: Incorrect API key provided`` is a message to
# read, not a setting: only ``invalid_api_key=…`` counts.)
_CREDENTIAL = re.compile(
    r"""((?:\bauthorization|(?<!invalid_)api[-_]?key|invalid_api_key(?=\s*=)|\bx-api-key)["']?\s*[:=]\s*["']?"""
    r"""(?:(?:bearer|basic|token)\s+)?|\bbearer\s+)([^\s"',;&)}\]]+)""",
    re.IGNORECASE,
)


class Secret:
    """A credential that never shows itself: its ``repr`` and ``str`` are ``***``.

    A key is wrapped the moment it enters a function that can still fail on a user's
    other arguments, so that a verbose traceback (``%xmode Verbose``, which prints each
    frame's variables) shows ``Secret('***')``; only :meth:`reveal` gives the text, at
    the one place that hands it to the SDK.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @classmethod
    def wrap(cls, value: str | Secret | None) -> Secret | None:
        """``value`` as a registered :class:`Secret` (``None`` and secrets as they are)."""
        if value is None or isinstance(value, Secret):
            return value
        if not isinstance(value, str):
            raise TypeError(f"api_key must be a string, not {type(value).__name__}")
        register_secret(value)
        return cls(value)

    def reveal(self) -> str:
        """The credential itself (for the SDK client, nowhere else)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:  # no key in a pickle (copy, multiprocessing) either
        raise TypeError("a Secret cannot be pickled")


def register_secret(secret: str | None) -> None:
    """Remember a credential so that :func:`scrub` removes it from any text (and, in
    IPython, from every traceback shown from now on: :func:`install_traceback_filter`)."""
    if secret and len(secret) >= _MIN_SECRET:
        with _lock:
            _secrets.add(secret)
        install_traceback_filter()


class _ScrubbedText:
    """Stands for an exception where only its text is read (``str(evalue)``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def install_traceback_filter() -> None:
    """In an IPython shell, scrub every traceback before it is shown or sent to the front
    end, including the frames of the user's own code (``%xmode Verbose`` prints a cell's
    variables: ``key = '***'``). Idempotent; nothing outside IPython.

    ``InteractiveShell._showtraceback(etype, evalue, stb)`` is the one place every
    traceback passes through on its way out (ipykernel sends ``stb`` and ``str(evalue)``
    as the ``error`` message; the terminal prints ``stb``); subclasses override it, so a
    wrapper on the instance is the hook IPython offers.
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return
    try:
        shell = ipython.get_ipython()
    except Exception:  # an IPython too old or half-imported: nothing to filter
        return
    if shell is None or getattr(shell, "_rt_notebook_scrubs_tracebacks", False):
        return
    show = shell._showtraceback

    def show_scrubbed(etype: Any, evalue: Any, stb: Any) -> Any:
        # Registered keys only: the credential patterns would also rewrite the user's
        # code in the traceback (``api_key=os.getenv(…)``).
        lines = [_scrub_registered(line) if isinstance(line, str) else line for line in stb or ()]
        return show(etype, _ScrubbedText(_scrub_registered(str(evalue))), lines)

    shell._showtraceback = show_scrubbed
    shell._rt_notebook_scrubs_tracebacks = True


def scrub(text: str) -> str:
    """``text`` with every registered credential and credential value replaced by ``***``."""
    text = _scrub_registered(text)
    lowered = text.lower()  # a cheap look first: nearly no text names a credential
    if "authorization" in lowered or "bearer" in lowered or "key" in lowered:
        return _CREDENTIAL.sub(_redact_value, text)
    return text


def _scrub_registered(text: str) -> str:
    """``text`` with every registered credential replaced by ``***`` (nothing else)."""
    for secret in tuple(_secrets):
        if secret in text:
            text = text.replace(secret, "***")
    return text


def scrub_bytes(data: bytes) -> bytes:
    """``data`` (a frame that is not UTF-8 text) with every registered credential
    replaced by ``***``."""
    for secret in tuple(_secrets):
        encoded = secret.encode()
        if encoded in data:
            data = data.replace(encoded, b"***")
    return data


def _redact_value(match: re.Match[str]) -> str:
    return match.group(0) if match.group(2) == "***" else match.group(1) + "***"


def scrub_data(value: Any) -> Any:
    """A copy of JSON-like ``value`` (dicts, lists, strings) with every string scrubbed."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: scrub_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub_data(item) for item in value)
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs each record's message, exception and stack text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return True
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


_filter = RedactingFilter()


def install_log_filter() -> None:
    """Add the redacting filter to the ``websockets`` and ``openai`` loggers and children.

    Idempotent; call it again after a library created new child loggers.
    """
    names = set(LOGGERS) | set(_KNOWN_CHILDREN)
    names |= {
        name
        for name in list(logging.Logger.manager.loggerDict)
        if name.startswith(tuple(f"{root}." for root in LOGGERS))
    }
    for name in names:
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)

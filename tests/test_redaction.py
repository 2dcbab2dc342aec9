"""Key redaction: scrub() rules, and the log filter on the websockets and openai loggers.

The filter is checked against the real libraries: a Session connects with a fake key to
the embedded server while the root logger records everything at DEBUG.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from rt_notebook.redaction import RedactingFilter, register_secret, scrub, scrub_data
from tests.timing import PROCESS_WAIT

KEY = "sk-proj-FAKE0123456789abcdefREDACTION"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("> Authorization: Bearer abc.def-ghi", "> Authorization: Bearer ***"),
        ("{'Authorization': 'Bearer abc'}", "{'Authorization': 'Bearer ***'}"),
        ("api-key: 0123456789", "api-key: ***"),
        ("AsyncOpenAI(api_key='secret-value')", "AsyncOpenAI(api_key='***')"),
        ("OPENAI_API_KEY=sk-whatever", "OPENAI_API_KEY=***"),
        ("wss://x/openai/realtime?api-key=abc&deployment=d", "?api-key=***&deployment=d"),
        ("bearer xyz", "bearer ***"),
        ("no credentials here: authorisation pending", "no credentials here"),
        # an error code's label is not a setting: its message stays readable
        (
            "invalid_api_key: Incorrect API key provided.",
            "invalid_api_key: Incorrect API key provided.",
        ),
        ("invalid_api_key=sk-whatever", "invalid_api_key=***"),
    ],
)
def test_scrub_hides_credential_values(text, kept):
    assert kept in scrub(text)


def test_scrub_hides_registered_secrets_anywhere():
    register_secret(KEY)
    assert scrub(f"prefix{KEY}suffix") == "prefix***suffix"
    data = {"error": {"message": f"bad key {KEY}", "list": [KEY, 3]}, "n": 1}
    assert KEY not in repr(scrub_data(data))
    assert scrub_data(data)["n"] == 1


def test_short_strings_are_not_registered():
    register_secret("abc")
    assert scrub("abc abc") == "abc abc"


def test_filter_scrubs_message_arguments_and_tracebacks():
    register_secret(KEY)
    record = logging.LogRecord("websockets.client", logging.DEBUG, __file__, 1, "> %s: %s",
                               ("Authorization", f"Bearer {KEY}"), None)  # fmt: skip
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "> Authorization: Bearer ***"
    try:
        _refuse()
    except ValueError:
        record = logging.LogRecord("openai", logging.ERROR, __file__, 1, "failed", (),
                                   sys.exc_info())  # fmt: skip
    RedactingFilter().filter(record)
    assert KEY not in logging.Formatter().format(record)


def _refuse() -> None:
    raise ValueError(f"refused {KEY}")


SCRIPT = textwrap.dedent(
    """
    import logging, io, os
    stream = io.StringIO()
    logging.basicConfig(level=logging.DEBUG, stream=stream, force=True)
    for name in ("websockets", "openai", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    import rt_notebook.redaction as redaction
    before = [f for name in redaction.LOGGERS for f in logging.getLogger(name).filters]
    from rt_notebook.server import EmbeddedServer
    from rt_notebook.client.session import Session
    key = os.environ["FAKE_KEY"]
    with EmbeddedServer(pace=0.0, token=key) as server:
        session = Session(base_url=server.base_url, websocket_base_url=server.websocket_base_url,
                          api_key=key)
        session.connect()
        print("ANSWER", session.ask("hello").wait(30).text)
        session.close()
    log = stream.getvalue()
    print("FILTERS_BEFORE_CONNECT", len(before))
    print("AUTH_LINES", sum("Authorization" in line for line in log.splitlines()))
    print("KEY_IN_LOG", log.count(key))
    print("LOG_LINES", len(log.splitlines()))
    """
)


def test_debug_logs_of_a_real_connection_show_no_key(tmp_path):
    """A user's own DEBUG logging of websockets and openai, through a real connection."""
    script = tmp_path / "debug_logging.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=PROCESS_WAIT,
        env={**_clean_env(), "FAKE_KEY": KEY},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert out["ANSWER"].startswith("Echo: hello")
    assert out["FILTERS_BEFORE_CONNECT"] == "0"  # not installed at import
    assert int(out["AUTH_LINES"]) >= 2  # the client sent it and the server received it
    assert out["KEY_IN_LOG"] == "0"
    assert KEY not in result.stderr
    assert int(out["LOG_LINES"]) > 10


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_"))}

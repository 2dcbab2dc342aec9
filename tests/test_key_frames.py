"""No frame of a traceback holds a key: what ``%xmode Verbose`` would print, read from the
frames themselves (every local of every frame, as ``capture_locals`` shows them)."""

from __future__ import annotations

import pickle
import traceback

import pytest

from rt_notebook.client.transport import Transport, resolve_endpoint
from rt_notebook.errors import ConfigurationError
from rt_notebook.redaction import Secret, scrub

KEY = "sk-proj-FRAMES0123456789abcdefghijklmn"


def _every_local(error: BaseException) -> str:
    """The file and the repr of every local of every frame the error passed through, below
    the test's own frame (whose locals are the caller's: a user's cell)."""
    shown = []
    for frame, _ in list(traceback.walk_tb(error.__traceback__))[1:]:
        shown.append(frame.f_code.co_filename)
        for name, value in frame.f_locals.items():
            try:
                shown.append(f"{name} = {value!r}")
            except Exception as exc:  # a half-made object: IPython shows it as unprintable
                shown.append(f"{name} = <unprintable: {type(exc).__name__}>")
    return "\n".join(shown)


def test_a_secret_never_shows_itself():
    secret = Secret.wrap(KEY)
    assert secret is not None
    assert KEY not in repr(secret) + str(secret) + f"{secret}" + repr([secret])
    assert secret.reveal() == KEY
    assert Secret.wrap(secret) is secret
    assert scrub(f"key {KEY}") == "key ***"  # wrapping registers it
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError, match="api_key must be a string"):
        Secret.wrap(1234)  # type: ignore[arg-type]


def test_a_typo_in_connect_fails_at_the_call():
    import rt_notebook

    with pytest.raises(TypeError, match="tmeout") as caught:
        rt_notebook.connect("typo", api_key=KEY, tmeout=5)  # type: ignore[call-arg]
    assert _every_local(caught.value) == ""  # no frame of ours ran


@pytest.mark.parametrize(
    "mistake",
    [{"modalities": 5}, {"dialect": "gamma"}, {"websocket_base_url": 5}, {"model": 5}],
)
def test_a_wrong_type_in_session_shows_no_key_in_any_frame(mistake):
    from rt_notebook.client.session import Session

    def make() -> None:
        Session(api_key=KEY, base_url="http://127.0.0.1:9/v1", **mistake)

    with pytest.raises((TypeError, ConfigurationError)) as caught:
        make()
    frames = _every_local(caught.value)
    assert "session.py" in frames or "transport.py" in frames
    assert KEY not in frames


def test_a_wrong_type_through_connect_shows_no_key_in_any_frame():
    import rt_notebook

    with pytest.raises(TypeError) as caught:
        rt_notebook.connect("wrong-type", api_key=KEY, modalities=5)  # type: ignore[arg-type]
    frames = _every_local(caught.value)
    assert "client/registry.py" in frames
    assert "Secret('***')" in frames
    assert KEY not in frames


def test_the_sdk_refusing_settings_shows_no_sdk_frame():
    endpoint, key = resolve_endpoint(api_key=KEY, base_url="http://127.0.0.1:9/v1")
    broken = type(endpoint)(model=endpoint.model, dialect=endpoint.dialect, base_url="::\x00")
    with pytest.raises(ConfigurationError, match="refused") as caught:
        Transport(broken, key)
    frames = _every_local(caught.value)
    assert "transport.py" in frames
    assert KEY not in frames
    assert "openai/" not in frames


def test_ipython_tracebacks_are_scrubbed_on_their_way_out(monkeypatch):
    """Every traceback IPython shows passes ``_showtraceback``: registered keys are
    replaced there, the user's code is left as it is."""
    import IPython

    from rt_notebook import redaction

    class Shell:
        shown: tuple[str, list[str]] | None = None

        def _showtraceback(self, etype, evalue, stb):
            self.shown = (str(evalue), stb)

    shell = Shell()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    redaction.register_secret(KEY)
    redaction.install_traceback_filter()  # idempotent
    stb = [f"key = '{KEY}'", "connect(api_key=os.getenv('OPENAI_API_KEY'))"]
    shell._showtraceback(ValueError, ValueError(f"bad {KEY}"), stb)
    assert shell.shown == (
        "bad ***",
        ["key = '***'", "connect(api_key=os.getenv('OPENAI_API_KEY'))"],
    )

"""One options type per concept, and every place that uses it kept alike: a response option
added to ``ResponseOptions`` must be a ``%%realtime`` option, reach the ``response.create``
body and be taken by the Session (tests of drift, against the real parser, payload builder
and a Session on the embedded server)."""

from __future__ import annotations

import inspect
import typing

import pytest
from IPython.core.magic_arguments import parse_argstring

from rt_notebook.client.transport import ENDPOINT_OPTIONS, EndpointOptions
from rt_notebook.frontends.magic_args import option_flag, response_overrides
from rt_notebook.frontends.magics import RealtimeMagics
from rt_notebook.protocol import payloads
from rt_notebook.protocol.events import Dialect
from rt_notebook.protocol.options import RESPONSE_OPTIONS, ResponseOptions, Unpack
from rt_notebook.tools import Tool, Toolbox, ToolOptions, function_tool
from rt_notebook.tools.schema import TOOL_OPTIONS
from tests.timing import WAIT

# A %%realtime line part setting each response option (a new option needs a line here).
CELL_OPTIONS = {
    "instructions": "--instructions 'Be brief.'",
    "modalities": "--modalities text",
    "voice": "--voice marin",
    "tools": "--tools weather",
    "tool_choice": "--tool-choice auto",
    "max_output_tokens": "--max-output-tokens 64",
    "reasoning_effort": "--reasoning-effort low",
    "metadata": "--metadata run=1",
    "conversation": "--oob",
    "input": "--input item_1",
}
# Where each option lands in a GA response.create body.
GA_FIELD = {
    "instructions": ("instructions",),
    "modalities": ("output_modalities",),
    "voice": ("audio", "output", "voice"),
    "tools": ("tools",),
    "tool_choice": ("tool_choice",),
    "max_output_tokens": ("max_output_tokens",),
    "reasoning_effort": ("reasoning", "effort"),
    "metadata": ("metadata", "run"),
    "conversation": ("conversation",),
    "input": ("input",),
}
WEATHER = {"type": "function", "name": "weather", "description": "", "parameters": {}}


def _cell_args(line: str) -> typing.Any:
    return parse_argstring(RealtimeMagics.realtime, line)


def _every_option_from_a_cell() -> ResponseOptions:
    return response_overrides(_cell_args(" ".join(CELL_OPTIONS.values())))


def _field(body: dict[str, typing.Any], path: tuple[str, ...]) -> typing.Any:
    for key in path:
        body = body[key]
    return body


def test_every_response_option_is_a_cell_option():
    assert set(CELL_OPTIONS) == RESPONSE_OPTIONS, "give each response option a line here"
    parsed = vars(_cell_args(""))
    assert {option_flag(option) for option in RESPONSE_OPTIONS} <= set(parsed)
    assert set(_every_option_from_a_cell()) == RESPONSE_OPTIONS


@pytest.mark.parametrize("option", sorted(RESPONSE_OPTIONS))
def test_each_cell_option_reaches_the_response_body(option):
    assert set(GA_FIELD) == RESPONSE_OPTIONS
    given: ResponseOptions = {**_every_option_from_a_cell()}
    given["tools"] = [WEATHER]  # names are resolved by the Session first
    alone = {option: given[option]}  # type: ignore[literal-required]
    body = payloads.response_settings(Dialect.GA, **alone)  # type: ignore[misc]
    assert _field(body, GA_FIELD[option]) is not None
    assert len(body) == 1  # nothing else slipped in


def test_the_session_takes_the_response_options_as_its_keywords():
    from rt_notebook.client.session import Session

    for method in (Session.create_response, Session.ask, Session.commit_audio):
        hints = typing.get_type_hints(method, include_extras=True)
        assert hints["options"] == Unpack[ResponseOptions], method.__name__
        kinds = {p.name: p.kind for p in inspect.signature(method).parameters.values()}
        assert kinds["options"] is inspect.Parameter.VAR_KEYWORD
        assert not set(kinds) & RESPONSE_OPTIONS  # each option declared once, in the type


def test_a_session_sends_what_a_cell_asks_for(session):
    session.register_tool(lambda city: city, name="weather")
    options = _every_option_from_a_cell()
    options.pop("conversation")  # in the conversation: its tool round copies the options
    options.pop("input")
    handle = session.create_response(**options)
    handle.wait(WAIT)
    for option in options:
        assert _field(handle.params, GA_FIELD[option]) is not None, option
    assert handle.params["tools"][0]["name"] == "weather"


def test_a_misspelt_response_option_is_refused_before_anything_is_sent(session):
    before = session.item_ids()
    with pytest.raises(TypeError, match="instructons"):
        session.ask("hello", instructons="Be brief.")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="max_tokens"):
        session.create_response(max_tokens=5)  # type: ignore[call-arg]
    assert session.item_ids() == before
    assert session.pending_responses == 0


def test_the_session_and_connect_name_every_endpoint_option():
    import rt_notebook
    from rt_notebook.client.session import Session

    # Spelled out (a misspelt keyword must fail at the call, before a frame holds the key),
    # so this keeps them alike with the one declaration.
    assert set(EndpointOptions.__annotations__) == ENDPOINT_OPTIONS
    for function in (Session.__init__, rt_notebook.connect):
        parameters = set(inspect.signature(function).parameters)
        assert parameters >= ENDPOINT_OPTIONS, function.__qualname__


def test_a_misspelt_endpoint_option_is_refused_and_keeps_no_key():
    from rt_notebook.client.transport import resolve_endpoint

    given = {"api_key": "sk-proj-NOTAKEY0123456789abcdefghij", "bse_url": "http://x"}
    with pytest.raises(TypeError, match="bse_url"):
        resolve_endpoint(**given)  # type: ignore[arg-type]


def test_every_tool_option_reaches_the_tool_and_every_registration_takes_them():
    from rt_notebook.client.session import Session
    from rt_notebook.tools import registry

    values = {"name": "renamed", "description": "Says hi.", "approval": True, "timeout": 3.0}
    assert set(values) == TOOL_OPTIONS
    built = function_tool(lambda: "hi", **values)  # type: ignore[arg-type]
    assert {option: getattr(built, option) for option in TOOL_OPTIONS} == values
    for function in (
        function_tool,
        registry.tool,
        Toolbox.register,
        Toolbox.tool,
        Session.tool,
        Session.register_tool,
    ):
        # Session names the type for the type checker only (tools load with a Session).
        annotation = inspect.signature(function).parameters["options"].annotation
        assert annotation in ("Unpack[ToolOptions]", Unpack[ToolOptions]), function.__qualname__
    with pytest.raises(TypeError, match="aproval"):
        registry.tool(aproval=True)  # type: ignore[call-overload]
    assert isinstance(built, Tool)

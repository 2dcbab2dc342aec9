"""Function tools: schemas and argument validation (pure), and the runner against the
embedded offline server."""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import threading
from typing import Annotated, Literal

import pytest
from pydantic import Field

from rt_notebook.errors import ConfigurationError
from rt_notebook.tools import (
    ROUND_TAG,
    CallState,
    ToolArgumentsError,
    ToolCall,
    ToolRegistry,
    ToolRound,
    asking,
    default_registry,
    encode_output,
    function_tool,
    tool,
)
from rt_notebook.tools.runner import FINISHED
from tests.timing import WAIT, within

# Schemas ------------------------------------------------------------------------------


def get_weather(city: str, unit: Literal["c", "f"] = "c", days: int = 1) -> str:
    """Get the weather forecast for a city.

    Uses the offline table, so it is always sunny.

    Args:
        city: The city, e.g. "London".
        unit: Celsius or Fahrenheit.
    """
    return f"{city}: sunny for {days} days ({unit})"


def test_schema_comes_from_type_hints_and_the_docstring():
    built = function_tool(get_weather)
    assert built.schema == {
        "type": "function",
        "name": "get_weather",
        "description": "Get the weather forecast for a city.",
        "parameters": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "city": {
                    "type": "string",
                    "title": "City",
                    "description": 'The city, e.g. "London".',
                },
                "unit": {
                    "type": "string",
                    "enum": ["c", "f"],
                    "default": "c",
                    "title": "Unit",
                    "description": "Celsius or Fahrenheit.",
                },
                "days": {"type": "integer", "default": 1, "title": "Days"},
            },
            "required": ["city"],
        },
    }


def test_numpy_docstrings_annotated_fields_and_overrides():
    def search(query, limit: Annotated[int, Field(ge=1, le=50)] = 10):
        """Search the notes.

        Parameters
        ----------
        query : str
            Words to look for.
        """

    built = function_tool(search, name="find_notes", description="Find notes.", timeout=5)
    assert built.name == "find_notes"
    assert built.description == "Find notes."
    assert built.timeout == 5
    properties = built.parameters["properties"]
    assert properties["query"] == {"title": "Query", "description": "Words to look for."}
    assert properties["limit"]["minimum"] == 1
    assert properties["limit"]["maximum"] == 50


def test_parameters_named_like_pydantic_attributes_work():
    def export(json: str, schema: int = 0, model_config: bool = False) -> str:
        return f"{json}/{schema}/{model_config}"

    built = function_tool(export)
    assert set(built.parameters["properties"]) == {"json", "schema", "model_config"}
    assert built.run('{"json": "a", "schema": 2}') == "a/2/False"


def test_functions_the_model_cannot_call_are_refused():
    def varargs(*names: str) -> None: ...

    with pytest.raises(ConfigurationError, match=r"\*names"):
        function_tool(varargs)
    with pytest.raises(ConfigurationError, match="tool name"):
        function_tool(get_weather, name="get weather")


def test_validation_coerces_and_fills_defaults():
    built = function_tool(get_weather)
    assert built.validate('{"city": "Paris", "days": "3"}') == (
        [],
        {"city": "Paris", "unit": "c", "days": 3},
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("{not json", "arguments are not valid JSON"),
        ("[1, 2]", "arguments must be a JSON object"),
        ('{"unit": "c"}', "city: Field required"),
        ('{"city": 7}', "city: Input should be a valid string"),
        ('{"city": "Oslo", "unit": "k"}', "unit: Input should be 'c' or 'f'"),
        ('{"city": "Oslo", "town": "x"}', "town: Extra inputs are not permitted"),
    ],
)
def test_bad_arguments_give_a_message_for_the_model(arguments, message):
    with pytest.raises(ToolArgumentsError, match=message):
        function_tool(get_weather).validate(arguments)


def test_positional_only_parameters_and_async_functions():
    def power(base: int, /, exponent: int = 2) -> int:
        return base**exponent

    async def double(x: float) -> float:
        return 2 * x

    assert function_tool(power).run({"base": 3, "exponent": 3}) == 27
    assert function_tool(double).run('{"x": 1.5}') == 3.0


def test_results_are_encoded_as_json_unless_they_are_strings():
    @dataclasses.dataclass
    class Reading:
        when: datetime.date
        values: list[float]

    assert encode_output("plain words") == "plain words"
    assert json.loads(encode_output({"a": [1, 2]})) == {"a": [1, 2]}
    assert json.loads(encode_output(Reading(datetime.date(2026, 1, 2), [1.5]))) == {
        "when": "2026-01-02",
        "values": [1.5],
    }
    assert encode_output(None) == "null"


# Registries ---------------------------------------------------------------------------


def test_a_registry_shadows_its_parent_and_notifies_listeners():
    parent = ToolRegistry()
    child = ToolRegistry(parent)
    changes = []
    child.on_change(lambda: changes.append(sorted(child)))
    parent.add(function_tool(get_weather))
    child.add(function_tool(get_weather, description="Local weather."))
    assert child["get_weather"].description == "Local weather."
    assert parent["get_weather"].description.startswith("Get the weather")
    assert len(child) == 1
    child.remove("get_weather")
    assert child["get_weather"] is parent["get_weather"]
    assert changes == [["get_weather"]] * 3


def test_the_decorator_keeps_the_function_callable():
    @tool(approval=True)
    def shout(text: str) -> str:
        """Shout it."""
        return text.upper()

    try:
        assert default_registry["shout"] is shout
        assert shout("hi") == "HI"
        assert shout.approval is True
    finally:
        default_registry.remove("shout")


# The runner, against the embedded server ------------------------------------------


def weather(city: str) -> str:
    """Get the weather for a city."""
    return f"It is foggy in {city}."


def session_tools(session):
    """The tool names the server confirmed last.

    Waits for the server's session.updated first: right after connect, the answer to
    connect's own session.update can be taken for the answer to ours.
    """
    session.add_message("(sync)")  # acknowledged after every earlier client event
    return [t["name"] for t in session.session_config.get("tools", [])]


def test_registered_tools_are_sent_with_session_update(session):
    session.register_tool(weather, name="get_weather")
    assert session_tools(session) == ["get_weather"]
    session.tools.unregister("get_weather")
    assert session_tools(session) == []


def test_kernel_wide_tools_reach_connected_sessions(session):
    @tool
    def get_time(zone: str) -> str:
        """Get the time in a zone."""
        return "noon"

    try:
        assert "get_time" in session_tools(session)
        assert "get_time" in session.tools
    finally:
        default_registry.remove("get_time")
    assert "get_time" not in session_tools(session)


def run_round(session, text, **overrides):
    """Ask, wait for the response, and return it with its tool round (done)."""
    result = session.ask(text, **overrides).wait(within(10))
    tool_round = session.tools.round_for(result.id)
    assert tool_round is not None
    assert tool_round.wait(within(10))
    return result, tool_round


def test_a_round_posts_the_output_and_requests_the_follow_up(session):
    session.register_tool(weather, name="get_weather")
    _, tool_round = run_round(
        session,
        "What is the weather in London?",
        instructions="Be brief.",
        metadata={"topic": "weather"},
        tool_choice="required",
    )
    [call] = tool_round.calls
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "London"})
    assert call.state is CallState.DONE
    assert call.result == call.output == "It is foggy in London."
    follow_up = tool_round.follow_up.wait(within(10))
    assert "It is foggy in London." in follow_up.text
    assert not follow_up.function_calls  # tool_choice "required" was not repeated
    params = tool_round.follow_up.params
    assert params["instructions"] == "Be brief."
    assert "tool_choice" not in params
    assert follow_up.metadata == {"topic": "weather", ROUND_TAG: "1"}
    kinds = [(item.type, item.role) for item in session.items]
    assert kinds == [
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
        ("message", "assistant"),
    ]
    assert session.items[2].id == call.output_item_id


def test_exceptions_timeouts_and_bad_arguments_become_error_outputs(session):
    release = threading.Event()

    def get_price(symbol: str) -> float:
        raise ValueError(f"no price for {symbol}")

    def get_report(name: str) -> str:
        release.wait(WAIT)
        return "too late"

    session.register_tool(get_price)
    session.register_tool(get_report, timeout=0.05)
    session.register_tool(weather, name="get_weather")
    try:
        _, failed = run_round(session, 'call get_price {"symbol": "ACME"}')
        _, slow = run_round(session, 'call get_report {"name": "Q3"}')
        _, invalid = run_round(session, 'call get_weather {"city": ["a", "b"]}')
    finally:
        release.set()
    expected = {
        failed: "get_price raised ValueError: no price for ACME",
        slow: "get_report did not finish within 0.05 s",
        invalid: "get_weather: invalid arguments: city: Input should be a valid string",
    }
    for tool_round, message in expected.items():
        [call] = tool_round.calls
        assert call.state is CallState.FAILED
        assert call.error == message
        assert json.loads(call.output) == {"error": message}
        assert session.item(call.output_item_id).output == call.output
        assert message in tool_round.follow_up.wait(within(10)).text


def awaiting(tool_round: ToolRound) -> ToolCall:
    """The round's call once it awaits approval."""
    [call] = tool_round.calls
    version = 0
    while call.state is not CallState.AWAITING_APPROVAL:
        assert call.state not in FINISHED, call
        version = tool_round.wait_for_change(version, 5)
    return call


def test_approval_waits_for_a_decision_from_another_thread(session):
    ran = []

    def delete_file(path: str) -> str:
        ran.append(path)
        return f"deleted {path}"

    session.register_tool(delete_file, approval=True)
    asked: list[ToolCall] = []
    for decision in ("approve", "deny"):
        with asking(lambda call: asked.append(call) or True):
            result = session.ask('call delete_file {"path": "a.txt"}').wait(within(10))
        tool_round = session.tools.round_for(result.id)
        call = awaiting(tool_round)
        assert session.tools.pending_approvals == [call]
        assert asked[-1] is call  # the front end that requested it was asked
        threading.Thread(target=getattr(call, decision)).start()
        assert tool_round.wait(within(10))
    assert ran == ["a.txt"]
    approved, denied = (r.calls[0] for r in session.tools.rounds[-2:])
    assert approved.output == "deleted a.txt"
    assert denied.state is CallState.DENIED
    assert json.loads(denied.output) == {"error": "the user declined to run delete_file"}


def test_a_call_nobody_can_approve_is_refused_at_once_saying_why(session, caplog):
    ran = []

    def wipe(path: str) -> None:
        ran.append(path)

    session.register_tool(wipe, approval=True)
    result = session.ask('call wipe {"path": "b.txt"}').wait(WAIT)  # plain ask(): no front end
    tool_round = session.tools.round_for(result.id)
    assert tool_round.wait(within(10))  # no 600 s wait
    [call] = tool_round.calls
    assert call.state is CallState.DENIED
    assert ran == []
    sent = json.loads(call.output)["error"]
    assert "wipe was not run: it needs approval and no one could be asked" in sent
    assert "declined" not in sent
    assert any(sent in record.getMessage() for record in caplog.records)  # the user sees it
    assert sent in tool_round.follow_up.wait(within(10)).text  # and so does the model


def test_an_approver_that_cannot_ask_refuses_and_a_fallback_approver_is_used(session):
    session.register_tool(lambda path: f"gone {path}", name="wipe", approval=True)
    with asking(lambda call: False):  # e.g. a closed panel
        result = session.ask('call wipe {"path": "c.txt"}').wait(within(10))
    tool_round = session.tools.round_for(result.id)
    assert tool_round.wait(within(10))
    assert "no one could be asked" in tool_round.calls[0].error
    session.tools.approver = lambda call: threading.Thread(target=call.approve).start() or True
    result = session.ask('call wipe {"path": "d.txt"}').wait(within(10))
    tool_round = session.tools.round_for(result.id)
    assert tool_round.wait(within(10))
    assert tool_round.calls[0].output == "gone d.txt"


def test_interrupting_an_approval_is_recorded_as_interrupted(session):
    session.register_tool(lambda path: f"gone {path}", name="wipe", approval=True)
    outcomes: list[str] = []
    with asking(lambda call: True):
        result = session.ask('call wipe {"path": "e.txt"}').wait(within(10))
    tool_round = session.tools.round_for(result.id)
    call = awaiting(tool_round)
    call.on_decided(outcomes.append)
    tool_round.cancel()  # what a cell's KeyboardInterrupt does
    assert tool_round.wait(within(10))
    assert call.state is CallState.INTERRUPTED
    assert outcomes == ["interrupted"]
    assert json.loads(call.output) == {
        "error": "wipe was not run: interrupted while waiting for approval"
    }
    assert tool_round.follow_up is None


def test_calls_to_hand_declared_tools_are_left_to_the_user(session):
    session.update_session(
        tools=[
            {
                "type": "function",
                "name": "lookup_order",
                "description": "Find an order.",
                "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}},
            }
        ]
    )
    result = session.ask('call lookup_order {"id": 7}').wait(within(10))
    [call] = result.function_calls
    assert session.tools.round_for(result.id) is None
    session.add_function_output(call.call_id, "shipped")
    assert "shipped" in session.create_response().wait(within(10)).text


def test_unknown_tools_get_an_error_output(session):
    tool_round = ToolRound("resp_x", depth=1)
    call = ToolCall(tool_round, "item_x", "call_x", "format_disk", "{}")
    output = session.tools._execute(call)
    assert call.state is CallState.FAILED
    assert json.loads(output)["error"].startswith("unknown tool 'format_disk'")


def test_tools_by_name_in_create_response(session):
    session.register_tool(weather, name="get_weather")
    handle = session.create_response(tools=["get_weather"], tool_choice="none")
    assert handle.params["tools"] == [session.tools["get_weather"].schema]
    handle.wait(within(10))
    with pytest.raises(ConfigurationError, match="no tool named 'nope'"):
        session.create_response(tools=["nope"])


def test_auto_run_off_leaves_calls_alone(session):
    session.register_tool(weather, name="get_weather")
    session.tools.auto_run = False
    result = session.ask("What is the weather in Rome?").wait(within(10))
    assert result.function_calls
    assert session.tools.round_for(result.id) is None
    assert [item.type for item in session.items][-1] == "function_call"


# Notebook tools ---------------------------------------------------------------------------


class FakeShell:
    """The parts of an IPython shell the notebook tools read."""

    def __init__(self, **variables):
        self.user_ns = {"In": ["", "x = 1", "x + 1"], "Out": {2: 2}, "_hidden": 0, **variables}
        self.user_ns_hidden = {"In": None, "Out": None}


def notebook_tools(**variables):
    from rt_notebook.tools.notebook_tools import make_tools

    return {t.name: t for t in make_tools(FakeShell(**variables))}


def test_read_variable_truncates_big_values():
    from rt_notebook.tools.notebook_tools import LIMIT

    tools = notebook_tools(small=[1, 2], big="x" * (3 * LIMIT))
    assert tools["read_variable"].run({"name": "small"}) == "small: builtins.list = [1, 2]"
    big = tools["read_variable"].run({"name": "big"})
    assert len(big) < 1.1 * LIMIT
    assert "xxx...xxx" in big
    with pytest.raises(KeyError, match=r"no variable 'nope'; defined: big, small"):
        tools["read_variable"].run({"name": "nope"})
    with pytest.raises(KeyError):
        tools["read_variable"].run({"name": "_hidden"})


def test_read_cell_and_read_last_error(monkeypatch):
    tools = notebook_tools()
    assert tools["read_cell"].run({"number": 2}) == {
        "number": 2,
        "source": "x + 1",
        "result": "2",
    }
    assert tools["read_cell"].run({"number": 1})["result"] is None
    with pytest.raises(IndexError, match="cells 1 to 2 have run"):
        tools["read_cell"].run({"number": 3})
    try:
        {}["missing"]
    except KeyError as error:
        monkeypatch.setattr("sys.last_value", error, raising=False)
        monkeypatch.setattr("sys.last_exc", error, raising=False)
    report = tools["read_last_error"].run({})
    assert "Traceback (most recent call last)" in report
    assert "KeyError: 'missing'" in report


def test_describe_dataframe_refuses_other_values():
    tools = notebook_tools(numbers=[1, 2, 3])
    with pytest.raises(TypeError, match="numbers is a list, not a DataFrame"):
        tools["describe_dataframe"].run({"name": "numbers"})


def test_describe_dataframe_samples_rows():
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"city": [f"c{i}" for i in range(100)], "temp": range(100)})
    report = notebook_tools(frame=frame)["describe_dataframe"].run({"name": "frame", "rows": 3})
    assert "frame: DataFrame with 100 rows and 2 columns" in report
    assert re.search(r"temp\s+int64", report)
    assert len(re.findall(r"\n\d+ +c\d+ +\d+", report)) == 3
    assert "3 sampled rows:" in report
    assert "numeric summary:" in report

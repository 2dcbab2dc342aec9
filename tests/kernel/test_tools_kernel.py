"""Function tools and conversation control through %%realtime in a real IPython kernel.

One kernel for the module, talking to embedded offline servers started inside it. Outputs
are checked as a saved notebook would hold them: display updates applied by display id.
"""

from __future__ import annotations

import itertools
import json
import queue
import textwrap

import pytest

from tests.timing import within

from .harness import Execution, Kernel

pytestmark = pytest.mark.kernel

SETUP = '''
%load_ext rt_notebook
import json, threading
import rt_notebook
from rt_notebook.server import EmbeddedServer
from rt_notebook.render.approval import ApprovalButtons

server = EmbeddedServer(pace=0.0).start()
session = rt_notebook.connect(
    base_url=server.base_url, websocket_base_url=server.websocket_base_url, api_key=server.token
)
# Slow streaming, for a response that is still running when another one starts.
paced_server = EmbeddedServer(pace=0.02).start()
paced = rt_notebook.connect(
    "paced",
    base_url=paced_server.base_url,
    websocket_base_url=paced_server.websocket_base_url,
    api_key=paced_server.token,
)

@session.tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"It is foggy and 12 degrees in {city}."

@session.tool
def get_stock_price(symbol: str) -> float:
    """Get the latest price of a stock."""
    raise RuntimeError(f"the market for {symbol} is closed")

@session.tool(approval=True)
def delete_file(path: str) -> str:
    """Delete a file from the project."""
    return f"deleted {path}"

def outputs_of(call_name):
    """The function_call_output items answering calls to ``call_name``, newest last."""
    items = session.items
    calls = {i.call_id for i in items if i.type == "function_call" and i.name == call_name}
    return [i.output for i in items if i.type == "function_call_output" and i.call_id in calls]
'''


@pytest.fixture(scope="module")
def kernel():
    kernel = Kernel()
    setup = kernel.execute(SETUP)
    assert setup.status == "ok", setup.error_text()
    yield kernel
    kernel.shutdown()


def saved_outputs(run: Execution) -> list[str]:
    """The cell's outputs as nbclient would save them (markdown, else plain text)."""
    outputs: list[dict] = []
    by_display_id: dict[str, int] = {}
    for message in run.of_type("display_data", "update_display_data", "stream"):
        content = message["content"]
        if message["msg_type"] == "stream":
            outputs.append({"text/plain": content["text"]})
            continue
        display_id = content.get("transient", {}).get("display_id")
        if message["msg_type"] == "update_display_data":
            outputs[by_display_id[display_id]] = content["data"]
            continue
        if display_id is not None:
            by_display_id[display_id] = len(outputs)
        outputs.append(content["data"])
    return [data.get("text/markdown") or data.get("text/plain", "") for data in outputs]


def value(kernel: Kernel, expression: str):
    """Evaluate ``expression`` in the kernel and return it (through JSON)."""
    run = kernel.execute(f"print(json.dumps({expression}))")
    assert run.status == "ok", run.error_text()
    return json.loads(run.stream_text())


def execute_in_cell(kernel: Kernel, code: str, cell_id: str) -> Execution:
    """Execute ``code`` as the notebook cell ``cell_id`` (JupyterLab sends ``cellId``)."""
    client = kernel.client
    content = {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    message = client.session.msg("execute_request", content, metadata={"cellId": cell_id})
    client.shell_channel.send(message)
    return collect(kernel, message["header"]["msg_id"])


def collect(kernel: Kernel, msg_id: str, on_message=None, timeout: float = 60) -> Execution:
    execution = Execution(reply={})
    while True:
        try:
            message = kernel.client.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"kernel silent for {timeout} s") from None
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        execution.messages.append(message)
        if on_message is not None:
            on_message(message)
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            break
    while True:
        reply = kernel.client.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            execution.reply = reply
            return execution


# A full tool round -----------------------------------------------------------------------


def test_a_tool_round_shows_the_call_the_result_and_the_answer(kernel):
    run = kernel.execute("%%realtime\nWhat is the weather in London?")
    assert run.status == "ok", run.error_text()
    outputs = saved_outputs(run)
    assert len(outputs) == 3, outputs
    call, result, answer = outputs
    assert "`get_weather`" in call
    assert '"city":"London"' in call.replace(" ", "")
    assert "It is foggy and 12 degrees in London." in result
    assert "returned" in result
    assert "It is foggy and 12 degrees in London." in answer
    assert "completed" in answer  # the follow-up's footer
    # The model got the result, and the conversation holds the whole round in order.
    assert value(kernel, "outputs_of('get_weather')")[-1] == (
        "It is foggy and 12 degrees in London."
    )
    kinds = value(kernel, "[(i.type, i.role) for i in session.items[-4:]]")
    assert kinds == [
        ["message", "user"],
        ["function_call", None],
        ["function_call_output", None],
        ["message", "assistant"],
    ]


def test_a_failing_tool_sends_an_error_and_shows_it(kernel):
    run = kernel.execute('%%realtime\ncall get_stock_price {"symbol": "ACME"}')
    assert run.status == "ok", run.error_text()
    result = saved_outputs(run)[1]
    assert "failed" in result
    assert "RuntimeError: the market for ACME is closed" in result
    sent = json.loads(value(kernel, "outputs_of('get_stock_price')")[-1])
    assert "the market for ACME is closed" in sent["error"]
    # The follow-up answer was generated from that error output.
    assert "the market for ACME is closed" in saved_outputs(run)[-1]


def test_invalid_arguments_go_back_to_the_model(kernel):
    run = kernel.execute('%%realtime\ncall get_weather {"town": "Paris"}')
    assert run.status == "ok", run.error_text()
    result = saved_outputs(run)[1]
    assert "invalid arguments" in result
    assert "city: Field required" in result
    sent = json.loads(value(kernel, "outputs_of('get_weather')")[-1])
    assert "city: Field required" in sent["error"]
    assert "town: Extra inputs are not permitted" in sent["error"]


# Approval --------------------------------------------------------------------------------


def test_approval_by_a_click_sent_as_a_comm_message_while_the_cell_blocks(kernel):
    """The front end's click reaches the blocked cell's buttons through the kernel."""
    client = kernel.client
    msg_id = client.execute('%%realtime\ncall delete_file {"path": "notes.txt"}')
    approve_ids = []
    clicked = []

    def click_approve(message):
        # Like a person: click Approve once the buttons are on screen.
        content = message["content"]
        if message["msg_type"] == "comm_open":
            if content["data"]["state"].get("description") == "Approve":
                approve_ids.append(content["comm_id"])
        elif (
            message["msg_type"] == "display_data"
            and approve_ids
            and not clicked
            and "application/vnd.jupyter.widget-view+json" in content["data"]
        ):
            click = client.session.msg(
                "comm_msg",
                {
                    "comm_id": approve_ids[-1],
                    "data": {"method": "custom", "content": {"event": "click"}},
                },
            )
            client.shell_channel.send(click)
            clicked.append(approve_ids[-1])

    run = collect(kernel, msg_id, on_message=click_approve)
    assert run.status == "ok", run.error_text()
    assert clicked
    outputs = saved_outputs(run)
    assert any("deleted notes.txt" in output for output in outputs)
    # The row's output became the decision, as Markdown: nothing left to restore.
    [row] = [
        m["content"]["transient"]["display_id"]
        for m in run.of_type("display_data")
        if "application/vnd.jupyter.widget-view+json" in m["content"]["data"]
    ]
    decided = [
        m["content"]["data"]
        for m in run.of_type("update_display_data")
        if m["content"]["transient"]["display_id"] == row
    ]
    assert decided[-1] == {
        "text/markdown": "*delete_file: approved*",
        "text/plain": "delete_file: approved",
    }
    assert value(kernel, "outputs_of('delete_file')")[-1] == "deleted notes.txt"


def test_deny_tells_the_model_the_user_declined(kernel):
    # A kernel thread clicks Deny as soon as the buttons exist (a widget callback that
    # arrives on another thread while the cell blocks).
    kernel.execute(
        textwrap.dedent(
            """
            import time
            def click_deny():
                deadline = time.monotonic() + DEADLINE
                while not ApprovalButtons.live:
                    assert time.monotonic() < deadline, "no approval buttons"
                    threading.Event().wait(0.01)
                next(iter(ApprovalButtons.live)).deny_button.click()
            threading.Thread(target=click_deny, daemon=True).start()
            """
        ).replace("DEADLINE", repr(within(60)))
    )
    run = kernel.execute('%%realtime\ncall delete_file {"path": "thesis.tex"}')
    assert run.status == "ok", run.error_text()
    assert any("the user declined to run delete_file" in o for o in saved_outputs(run))
    sent = json.loads(value(kernel, "outputs_of('delete_file')")[-1])
    assert sent == {"error": "the user declined to run delete_file"}


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def click(kernel: Kernel, comm_id: str) -> None:
    """What the front end sends when a person clicks the button with this comm."""
    message = kernel.client.session.msg(
        "comm_msg",
        {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}},
    )
    kernel.client.shell_channel.send(message)


def test_a_background_cell_asks_in_the_area_it_made_and_a_click_runs_the_tool(kernel):
    run = kernel.execute('%%realtime --background\ncall delete_file {"path": "bg.txt"}')
    assert run.status == "ok", run.error_text()
    # The cell made an (empty) area on its own thread before returning.
    [area] = [
        m["content"]["transient"]["display_id"]
        for m in run.of_type("display_data")
        if m["content"]["data"].get("text/plain") == ""
    ]
    buttons: dict[str, str] = {}
    # Later, from the tool worker: the buttons, put into that area by display id, as
    # messages of that cell (its parent header), never as new outputs. On a fast (or
    # busy) machine some may already have come before the cell went idle.
    later = iter(lambda: kernel.client.get_iopub_msg(timeout=within(60)), None)
    for message in itertools.chain(run.messages, later):
        content = message["content"]
        if message["msg_type"] == "comm_open":
            description = content["data"]["state"].get("description")
            if description in ("Approve", "Deny"):
                buttons[description] = content["comm_id"]
        if message["msg_type"] == "display_data" and message not in run.messages:
            assert message["parent_header"].get("msg_id") != run.msg_id, content
        if message["msg_type"] == "update_display_data" and WIDGET_VIEW in content["data"]:
            assert content["transient"]["display_id"] == area
            assert message["parent_header"]["msg_id"] == run.msg_id
            break
    assert set(buttons) == {"Approve", "Deny"}
    assert value(kernel, "[c.state.value for c in session.tools.pending_approvals]") == [
        "awaiting approval"
    ]
    click(kernel, buttons["Approve"])
    # The area the cell made now holds the decision as Markdown, by its display id.
    decided = kernel.wait_for_message(
        lambda m: (
            m["msg_type"] == "update_display_data"
            and m["content"]["transient"]["display_id"] == area
            and "text/markdown" in m["content"]["data"]
        )
    )
    assert decided["content"]["data"]["text/markdown"] == "*delete_file: approved*"
    done = kernel.execute(
        "r = session.tools.rounds[-1]\nr.wait(30)\n"
        "print(json.dumps([r.calls[0].state.value, r.calls[0].output]))"
    )
    assert json.loads(done.stream_text()) == ["done", "deleted bg.txt"]


def test_interrupting_a_cell_that_waits_for_approval_records_interrupted(kernel):
    client = kernel.client
    msg_id = client.execute('%%realtime\ncall delete_file {"path": "int.txt"}')
    interrupted = []

    def interrupt_once_asked(message):
        content = message["content"]
        if (
            message["msg_type"] == "display_data"
            and WIDGET_VIEW in content["data"]
            and not interrupted
        ):
            kernel.interrupt()  # Ctrl-C / the stop button, while the buttons wait
            interrupted.append(True)

    run = collect(kernel, msg_id, on_message=interrupt_once_asked)
    assert interrupted
    outputs = "\n".join(saved_outputs(run))
    assert "interrupted while waiting for approval" in outputs
    assert "declined" not in outputs
    sent = json.loads(value(kernel, "outputs_of('delete_file')")[-1])
    assert sent == {"error": "delete_file was not run: interrupted while waiting for approval"}
    state = value(kernel, "session.tools.rounds[-1].calls[0].state.value")
    assert state == "interrupted"


def test_plain_ask_refuses_at_once_when_no_one_can_approve(kernel):
    run = kernel.execute(
        textwrap.dedent(
            """
            result = session.ask('call delete_file {"path": "ask.txt"}').wait(30)
            r = session.tools.round_for(result.id)
            assert r.wait(30)
            print(json.dumps([r.calls[0].state.value, r.calls[0].error]))
            """
        )
    )
    assert run.status == "ok", run.error_text()
    state, error = json.loads(run.stream_text())
    assert state == "denied"
    assert error.startswith("delete_file was not run: it needs approval and no one could be")
    sent = json.loads(value(kernel, "outputs_of('delete_file')")[-1])
    assert sent == {"error": error}


# Answering a call by hand --------------------------------------------------------------


def test_function_output_answers_an_unregistered_call(kernel):
    declared = kernel.execute(
        textwrap.dedent(
            """
            session.update_session(tools=[{
                "type": "function", "name": "lookup_order", "description": "Find an order.",
                "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}},
            }])
            """
        )
    )
    assert declared.status == "ok", declared.error_text()
    asked = kernel.execute('%%realtime\ncall lookup_order {"id": 7}')
    assert asked.status == "ok", asked.error_text()
    call_id = value(kernel, "session.items[-1].call_id")
    assert f"--function-output {call_id}" in saved_outputs(asked)[-1]
    answered = kernel.execute(f"%%realtime --function-output {call_id}\nOrder 7 shipped on Monday.")
    assert answered.status == "ok", answered.error_text()
    assert "Order 7 shipped on Monday." in saved_outputs(answered)[-1]
    assert value(kernel, f"[i.output for i in session.items if i.call_id == {call_id!r}]") == [
        None,
        "Order 7 shipped on Monday.",
    ]


# Conversation control --------------------------------------------------------------------


def test_rerunning_a_cell_replaces_its_items_where_they_stand(kernel):
    first = execute_in_cell(kernel, "%%realtime\nFirst question about apples", "cell-a")
    assert first.status == "ok", first.error_text()
    old_ids = value(kernel, "[i.id for i in session.items[-2:]]")
    second = execute_in_cell(kernel, "%%realtime\nSecond question about pears", "cell-b")
    assert second.status == "ok", second.error_text()
    again = execute_in_cell(kernel, "%%realtime\nFirst question about plums", "cell-a")
    assert again.status == "ok", again.error_text()
    assert "First question about plums" in saved_outputs(again)[-1]

    texts = value(kernel, "[(i.role, i.text) for i in session.items][-4:]")
    assert [role for role, _ in texts] == ["user", "assistant", "user", "assistant"]
    assert "plums" in texts[0][1]
    assert "plums" in texts[1][1]  # the answer was moved back next to its question
    assert "pears" in texts[2][1]
    assert "pears" in texts[3][1]
    assert not any(
        "apples" in text for _, text in value(kernel, "[(i.role, i.text) for i in session.items]")
    )
    # The server agrees: every mirrored item is retrievable, the replaced ones are gone.
    check = kernel.execute(
        textwrap.dedent(
            f"""
            from rt_notebook.errors import ServerError
            for item in session.items:
                assert session.retrieve_item(item.id).id == item.id
            gone = []
            for item_id in {old_ids!r}:
                try:
                    session.retrieve_item(item_id)
                except ServerError as error:
                    gone.append(error.code)
            print(json.dumps(gone))
            """
        )
    )
    assert check.status == "ok", check.error_text()
    assert len(json.loads(check.stream_text())) == 2


# Shape of the conversation's items, and whether each output answers the call before it.
SHAPE = """[(i.type, i.role, i.name, i.call_id, i.text or i.output or i.arguments)
 for i in session.items]"""


def consistent(items) -> bool:
    """Every function_call_output answers a function call that stands before it."""
    calls = set()
    for kind, _, _, call_id, _ in items:
        if kind == "function_call":
            calls.add(call_id)
        elif kind == "function_call_output" and call_id not in calls:
            return False
    return True


def test_rerunning_a_tool_round_in_the_middle_runs_it_in_place(kernel):
    first = execute_in_cell(kernel, "%%realtime\nWhat is the weather in Oslo?", "cell-oslo")
    assert first.status == "ok", first.error_text()
    later = execute_in_cell(kernel, "%%realtime\nA later question about pears", "cell-pears")
    assert later.status == "ok", later.error_text()
    again = execute_in_cell(kernel, "%%realtime\nWhat is the weather in Bergen?", "cell-oslo")
    assert again.status == "ok", again.error_text()
    # The cell shows the whole round again: the call, the tool's result, the answer.
    outputs = saved_outputs(again)
    assert "`get_weather`" in outputs[0]
    assert "It is foggy and 12 degrees in Bergen." in outputs[1]
    assert "It is foggy and 12 degrees in Bergen." in outputs[-1]
    items = value(kernel, SHAPE)
    assert consistent(items), items
    assert not any("Oslo" in str(item) for item in items), items
    tail = [[kind, role] for kind, role, *_ in items[-6:]]
    assert tail == [
        ["message", "user"],
        ["function_call", None],
        ["function_call_output", None],
        ["message", "assistant"],
        ["message", "user"],
        ["message", "assistant"],
    ]
    question, call, output, answer = items[-6:-2]
    assert "Bergen" in question[4]
    assert "Bergen" in call[4]
    assert call[2] == "get_weather"
    assert output[3] == call[3]  # it answers the new call
    assert output[4] == "It is foggy and 12 degrees in Bergen."
    assert "It is foggy and 12 degrees in Bergen." in answer[4]
    assert "pears" in items[-2][4]
    # The server holds the same items (each retrievable).
    check = kernel.execute("for item in session.items: session.retrieve_item(item.id)")
    assert check.status == "ok", check.error_text()


def test_rerunning_a_call_answered_by_another_cell_leaves_no_orphan(kernel):
    """Asked in one cell, answered by hand in another (``--function-output``): re-running
    the asking cell deletes the old output with the old call, and says so; re-running the
    answering cell puts the new output right after the new call."""
    declared = kernel.execute(
        textwrap.dedent(
            """
            session.update_session(tools=[{
                "type": "function", "name": "lookup_order", "description": "Find an order.",
                "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}},
            }])
            """
        )
    )
    assert declared.status == "ok", declared.error_text()
    ask = '%%realtime --out asked\ncall lookup_order {"id": 7}'
    answer = "%%realtime --function-output {asked.function_calls[0].call_id}\nOrder 7 shipped."
    assert execute_in_cell(kernel, ask, "cell-ask").status == "ok"
    old_call = value(kernel, "asked.function_calls[0].call_id")
    run = execute_in_cell(kernel, answer, "cell-answer")
    assert run.status == "ok", run.error_text()
    assert execute_in_cell(kernel, "%%realtime\nSomething else", "cell-else").status == "ok"

    asked_again = execute_in_cell(kernel, ask, "cell-ask")
    assert asked_again.status == "ok", asked_again.error_text()
    assert any("answered by another cell" in text for text in saved_outputs(asked_again))
    new_call = value(kernel, "asked.function_calls[0].call_id")
    assert new_call != old_call
    items = value(kernel, SHAPE)
    assert consistent(items), items
    assert not any(call_id == old_call for _, _, _, call_id, _ in items), items

    answered_again = execute_in_cell(kernel, answer, "cell-answer")
    assert answered_again.status == "ok", answered_again.error_text()
    items = value(kernel, SHAPE)
    assert consistent(items), items
    tail = [[kind, role, call_id] for kind, role, _, call_id, _ in items[-6:]]
    assert tail == [
        ["message", "user", None],
        ["function_call", None, new_call],
        ["function_call_output", None, new_call],
        ["message", "assistant", None],
        ["message", "user", None],
        ["message", "assistant", None],
    ]
    assert items[-4][4] == "Order 7 shipped."
    assert "Something else" in items[-2][4]
    assert len([item for item in items if item[0] == "function_call_output"]) == len(
        {item[3] for item in items if item[0] == "function_call_output"}
    )


def test_a_background_cell_rerun_in_the_middle_gets_its_answer_after_it(kernel):
    cell = "%%realtime --background --out bg\n"
    first = execute_in_cell(kernel, cell + "Apples, first", "cell-bg")
    assert first.status == "ok", first.error_text()
    assert value(kernel, "bg.wait(30).status") == "completed"
    later = execute_in_cell(kernel, "%%realtime\nA later question about figs", "cell-figs")
    assert later.status == "ok", later.error_text()
    again = execute_in_cell(kernel, cell + "Plums, again", "cell-bg")
    assert again.status == "ok", again.error_text()
    # The answer comes later, from a thread: it lands right after the cell's message.
    placed = kernel.execute(
        textwrap.dedent(
            f"""
            import time
            deadline = time.monotonic() + {within(30)}
            texts = []
            while time.monotonic() < deadline:
                texts = [i.text for i in session.items]
                if any(t == "Echo: Plums, again" for t in texts):
                    break
                time.sleep(0.01)
            print(json.dumps(texts[-4:]))
            """
        )
    )
    assert placed.status == "ok", placed.error_text()
    assert json.loads(placed.stream_text()) == [
        "Plums, again",
        "Echo: Plums, again",
        "A later question about figs",
        "Echo: A later question about figs",
    ]
    assert not any("Apples" in text for text in value(kernel, "[i.text for i in session.items]"))


def test_without_a_cell_id_the_cell_text_identifies_the_cell(kernel):
    before = value(kernel, "len(session.items)")
    kernel.execute("%%realtime\nSame text twice")
    kernel.execute("%%realtime\nSame text twice")
    assert value(kernel, "len(session.items)") == before + 2
    kernel.execute("%%realtime --append\nSame text twice")
    assert value(kernel, "len(session.items)") == before + 4


def test_insert_at_root_and_after_an_item(kernel):
    run = kernel.execute("%%realtime --after root --no-response --append\nThe very first note")
    assert run.status == "ok", run.error_text()
    assert value(kernel, "session.items[0].text") == "The very first note"
    anchor = value(kernel, "session.items[1].id")
    run = kernel.execute(
        f"%%realtime --after {anchor} --no-response --append\nA note after the second item"
    )
    assert run.status == "ok", run.error_text()
    assert value(kernel, f"[i.id for i in session.items].index({anchor!r})") == 1
    assert value(kernel, "session.items[2].text") == "A note after the second item"


def test_an_out_of_band_response_runs_while_another_is_running(kernel):
    long_text = " ".join(f"word{n}" for n in range(300))
    started = kernel.execute(f"running = paced.ask({long_text!r})")
    assert started.status == "ok", started.error_text()
    aside = kernel.execute(
        "%%realtime --session paced --oob --metadata purpose=aside --out aside\nA quick aside"
    )
    assert aside.status == "ok", aside.error_text()
    assert "A quick aside" in saved_outputs(aside)[-1]
    assert "out of band" in saved_outputs(aside)[-1]
    state = value(
        kernel,
        "[running.done(), aside.out_of_band, aside.metadata, aside.status]",
    )
    assert state == [False, True, {"purpose": "aside"}, "completed"]
    # The aside never entered the conversation; the long answer finishes normally.
    assert value(kernel, "running.wait(60).status") == "completed"
    assert value(kernel, "[i.role for i in paced.items[-2:]]") == ["user", "assistant"]
    assert not any("A quick aside" in t for t in value(kernel, "[i.text for i in paced.items]"))


# Listing tools and the notebook tools ------------------------------------------------------


def test_realtime_tools_lists_and_enables_notebook_tools(kernel):
    listed = kernel.execute("%realtime tools")
    table = listed.of_type("execute_result")[0]["content"]["data"]["text/markdown"]
    assert "| `delete_file` | path | yes | 30 s | Delete a file from the project. |" in table
    enabled = kernel.execute("%realtime tools --notebook")
    assert enabled.status == "ok", enabled.error_text()
    table = enabled.of_type("execute_result")[0]["content"]["data"]["text/markdown"]
    for name in ("read_variable", "describe_dataframe", "read_cell", "read_last_error"):
        assert f"`{name}`" in table
    assert "read_variable" in value(kernel, "[t['name'] for t in session.session_config['tools']]")

    kernel.execute("secret_plan = ['tea', 42]")
    run = kernel.execute('%%realtime\ncall read_variable {"name": "secret_plan"}')
    assert "secret_plan: builtins.list = ['tea', 42]" in saved_outputs(run)[1]

    failed = kernel.execute("1 / 0")
    assert failed.status == "error"
    run = kernel.execute("%%realtime\ncall read_last_error {}")
    assert "ZeroDivisionError: division by zero" in saved_outputs(run)[1]

    run = kernel.execute('%%realtime\ncall read_cell {"number": 1}')
    assert "load_ext rt_notebook" in saved_outputs(run)[1]

"""A turn costs the same at turn 1,000 as at turn 10: counted in work, not timed.

The server used to re-read (copy and re-tokenise) the whole conversation for every
response. Now items are measured once when added or changed, and responders get a view
that copies only what they read. These tests count both kinds of work per turn.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from server_helpers import WEATHER_TOOL, Driven, user_text

from rt_notebook.protocol.events import Dialect
from rt_notebook.server import EchoResponder, PlannedOutput, ResponseRequest
from rt_notebook.server.items import ContextView, ItemStore
from rt_notebook.server.plan import item_size


class CountingEcho(EchoResponder):
    """The echo responder, noting how many items each request made it read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[int] = []

    def respond(self, request: ResponseRequest) -> Sequence[PlannedOutput]:
        answer = super().respond(request)
        assert isinstance(request.context, ContextView)
        self.reads.append(request.context.reads)
        return answer


def one_turn(driven: Driven, text: str) -> int:
    """Run a text turn; return how many items the conversation measured meanwhile."""
    before = driven.state.conversation.measured
    driven.send(
        {"type": "conversation.item.create", "item": user_text(text)}, {"type": "response.create"}
    )
    driven.run()
    return driven.state.conversation.measured - before


def test_the_work_of_a_turn_does_not_grow_with_the_conversation() -> None:
    responder = CountingEcho()
    driven = Driven(responder=responder)
    driven.text_mode()
    measured = [one_turn(driven, f"turn number {n}") for n in range(1000)]
    assert len(driven.state.items) == 2000
    # The user's item, then the answer when it opens and when its text is complete.
    assert measured[9] == measured[999] == 3
    # The last item, twice: is it a tool result? Then: is it the user's message?
    assert responder.reads[9] == responder.reads[999] == 2
    # The answer's usage still counts the whole conversation it read.
    done = [event for event in driven.log if event["type"] == "response.done"]
    usage = done[-1]["response"]["usage"]
    words = sum(item_size(item)[0] for item in driven.state.items[:-1])
    offline_words = len(driven.state.session["instructions"].split())
    assert usage["input_token_details"]["text_tokens"] == words + offline_words


def test_tool_results_read_back_only_to_their_calls() -> None:
    responder = CountingEcho()
    driven = Driven(responder=responder)
    driven.text_mode()
    for n in range(50):
        one_turn(driven, f"filler {n}")
    driven.session_update(tools=[WEATHER_TOOL])
    driven.send(
        {"type": "conversation.item.create", "item": user_text("What is the weather in Oslo?")},
        {"type": "response.create"},
    )
    call = next(e for e in driven.run() if e["type"] == "response.function_call_arguments.done")
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
    driven.send({"type": "conversation.item.create", "item": output}, {"type": "response.create"})
    events = driven.run()
    (text,) = [e["text"] for e in events if e["type"] == "response.output_text.done"]
    assert text == "get_weather returned: sunny"
    # The result, the item before it (not a result), then back to the call it answers.
    assert responder.reads[-1] == 3


def test_the_running_size_equals_a_full_recount() -> None:
    driven = Driven(Dialect.GA)
    driven.send(
        {"type": "conversation.item.create", "item": user_text("spoken answer please")},
        {"type": "response.create"},
    )
    events = driven.run()  # an audio answer (the default modality)
    spoken = next(e for e in events if e["type"] == "response.output_item.done")["item"]["id"]
    driven.send(
        {
            "type": "conversation.item.truncate",
            "item_id": spoken,
            "content_index": 0,
            "audio_end_ms": 0,
        }
    )
    driven.text_mode()
    one_turn(driven, "one two three")
    first = driven.state.items[0]["id"]
    driven.send({"type": "conversation.item.delete", "item_id": first})
    store = driven.state.conversation
    recount = [item_size(item) for item in driven.state.items]
    assert store.size == (sum(w for w, _ in recount), sum(a for _, a in recount))


def test_previous_ids_stay_right_under_inserts_and_removals() -> None:
    store = ItemStore()
    ids: list[str] = []
    chooser = random.Random(7)
    for n in range(300):
        item_id = f"item_{n}"
        if ids and chooser.random() < 0.2:
            victim = chooser.choice(ids)
            store.remove(victim)
            ids.remove(victim)
        where = chooser.choice([None, "root", *ids[-3:]]) if ids else None
        before = store.insert({"id": item_id, "type": "message"}, where)
        if where is None:
            position = len(ids)
        elif where == "root":
            position = 0
        else:
            position = ids.index(where) + 1
        assert before == (ids[position - 1] if position else None)
        ids.insert(position, item_id)
        for index, known in enumerate(ids):
            assert store.previous_id(known) == (ids[index - 1] if index else None)
    assert [item["id"] for item in store] == ids

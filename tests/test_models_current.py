"""Current with the installed ``openai`` SDK: the default model, prices, the GA dialect, and
the server event vocabulary, each checked against what the SDK itself says (its types and
docstrings are read here, not copied), so a new SDK release that deprecates our default,
adds a model without a price or adds an event fails CI, not users."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import re
import typing

import pytest
from openai import AsyncOpenAI

from rt_notebook.client import models, pricing
from rt_notebook.client.transport import DEFAULT_MODEL, resolve_endpoint
from rt_notebook.errors import ConfigurationError
from rt_notebook.protocol.checks import KNOWN_SERVER_EVENTS
from rt_notebook.protocol.conversation import Conversation
from rt_notebook.protocol.events import (
    BETA_TO_GA_EVENT,
    IGNORED_SERVER_EVENTS,
    READ_OUTSIDE_THE_MIRROR,
)
from rt_notebook.server import EmbeddedServer

SDK_MODULE = "openai.types.realtime.realtime_session_create_request_param"


def _sdk_model_field() -> tuple[list[str], str]:
    """The SDK's Realtime model names and the text of its "Deprecated values" note, read
    here without the package's parser (a second, independent reading)."""
    module = importlib.import_module(SDK_MODULE)
    hints = typing.get_type_hints(module.RealtimeSessionCreateRequestParam)
    names = [
        str(value)
        for arm in typing.get_args(hints["model"])
        if typing.get_origin(arm) is typing.Literal
        for value in typing.get_args(arm)
    ]
    source = inspect.getsource(module)
    after_field = source[re.search(r"^\s+model:", source, re.MULTILINE).end() :]  # type: ignore[union-attr]
    docstring = after_field.split('"""')[1]
    note = docstring.partition("Deprecated values:")[2]
    return names, note


def _sdk_deprecated() -> set[str]:
    names, note = _sdk_model_field()
    assert "Announced shutdown date" in note, "the SDK no longer words its note as expected"
    return {name for name in names if f'"{name}"' in note}


def test_the_default_model_is_listed_by_the_sdk_and_not_deprecated():
    names, _ = _sdk_model_field()
    deprecated = _sdk_deprecated()
    assert deprecated, "the SDK's note lists no deprecated model: was it reworded?"
    assert DEFAULT_MODEL in names
    assert DEFAULT_MODEL not in deprecated, (
        f"the SDK marks our default {DEFAULT_MODEL} deprecated: pick a current one "
        f"({sorted(set(names) - deprecated)})"
    )
    # The traitlet of %%realtime and the transport use the same one.
    from rt_notebook.frontends.magics import RealtimeMagics

    assert RealtimeMagics.model.default_value == DEFAULT_MODEL


def test_the_package_reads_the_same_deprecations_as_the_sdk_says():
    assert set(models.sdk_models()) == set(_sdk_model_field()[0])
    assert set(models.sdk_deprecations()) == _sdk_deprecated()
    for deprecation in models.sdk_deprecations().values():
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", deprecation.shutdown)
        if deprecation.replacement is not None:  # a replacement is itself current
            assert deprecation.replacement in models.sdk_models()
            assert deprecation.replacement not in models.sdk_deprecations()
    warning = models.deprecation_warning("gpt-realtime")
    assert warning is not None
    assert "2027-01-20" in warning
    assert "gpt-realtime-2.1" in warning
    assert "\n" not in warning
    assert models.deprecation_warning(DEFAULT_MODEL) is None
    assert models.deprecation_warning("my-local-model") is None


def test_the_parser_reads_a_note_with_several_dates():
    note = """The model.

    Deprecated values:

    - "a-1", "a-2",
      "a-3": Announced shutdown date: 2027-01-20. See
      https://example.invalid for details.
    - "b": Announced shutdown date: 2028-02-01.
    """
    found = models.parse_deprecations(note)
    assert {name: d.shutdown for name, d in found.items()} == {
        "a-1": "2027-01-20",
        "a-2": "2027-01-20",
        "a-3": "2027-01-20",
        "b": "2028-02-01",
    }
    assert models.parse_deprecations("No note at all.") == {}


def test_every_current_sdk_model_has_a_price_or_an_explicit_unknown():
    table = pricing.builtin_table()
    unknown = table["unknown"]
    current = [name for name in _sdk_model_field()[0] if name not in _sdk_deprecated()]
    # By exact name: a dated snapshot is not assumed to cost what its alias costs.
    missing = [name for name in current if name not in table["models"] and name not in unknown]
    assert not missing, f"no price and no 'unknown' marker for {missing}"
    assert not set(table["models"]) & set(unknown)
    for name, marker in unknown.items():
        assert marker.startswith("unknown, no public figure found"), name
        assert pricing.price_for(name, official=True) is None, name  # never its alias's
    priced = [name for name in current if name in table["models"]]
    for name in priced:
        assert pricing.price_for(name, official=True) == table["models"][name]
    print(f"{len(current)} current SDK models: {len(priced)} priced, the others marked unknown")


def test_each_price_names_its_source_and_the_day_it_was_read():
    table = pricing.builtin_table()
    for name, prices in table["models"].items():
        assert set(prices) <= set(pricing.PRICE_KINDS), name
        source = table["sources"][name]
        assert source["url"].startswith("https://"), name
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", source["read"]), name
    for name in ("gpt-realtime-2.1", "gpt-realtime-2.1-mini", "gpt-audio-1.5"):
        assert table["sources"][name]["read"] == "2026-12-06"


def test_a_missing_price_is_named_not_left_out():
    usage = {
        "total_tokens": 30,
        "input_tokens": 10,
        "output_tokens": 20,
        "input_token_details": {"text_tokens": 10, "audio_tokens": 0},
        "output_token_details": {"text_tokens": 5, "audio_tokens": 15},
    }
    assert pricing.cost_label([usage], None, "mystery") == "no price for mystery"
    nothing_used = {**usage, "total_tokens": 0, "input_tokens": 0, "output_tokens": 0}
    assert pricing.cost_label([nothing_used], None, "mystery") is None  # nothing to price
    assert pricing.cost_label([], None, "mystery") is None
    text_only = pricing.price_for("gpt-audio-mini", official=True)
    assert pricing.cost(usage, text_only) is None
    assert pricing.cost_label([usage], text_only, "gpt-audio-mini") == (
        "no price for gpt-audio-mini audio output"
    )
    full = pricing.price_for("gpt-realtime-2.1", official=True)
    assert pricing.cost_label([usage], full, "gpt-realtime-2.1") is None  # priced: a figure


def test_beta_with_openai_is_refused_before_connecting():
    with pytest.raises(ConfigurationError) as refused:
        resolve_endpoint(api_key="sk-test-not-a-real-key-0000", dialect="beta")
    message = str(refused.value)
    assert "\n" not in message
    assert "retired" in message
    assert "May 2026" in message
    assert 'dialect="ga"' in message
    assert "OpenAI-Beta" not in message
    with pytest.raises(ConfigurationError, match="retired"):
        resolve_endpoint(api_key="sk-test", base_url="https://api.openai.com/v1", dialect="beta")
    # Elsewhere beta stays possible: an explicit server, or offline without a key.
    endpoint, _ = resolve_endpoint(
        api_key="k", websocket_base_url="ws://127.0.0.1:9/v1", dialect="beta"
    )
    assert endpoint.dialect.value == "beta"


def test_the_embedded_server_refuses_the_beta_shape_by_default_through_the_sdk():
    async def beta_client(server: EmbeddedServer) -> list[dict[str, typing.Any]]:
        client = AsyncOpenAI(
            api_key=server.token,
            base_url=server.base_url,
            websocket_base_url=server.websocket_base_url,
        )
        events = []
        async with client.beta.realtime.connect(model="gpt-4o-realtime-preview") as connection:
            async for event in connection:
                events.append(event.model_dump())
        return events

    with EmbeddedServer(pace=0) as server:
        from websockets.exceptions import ConnectionClosedError

        with pytest.raises(ConnectionClosedError) as closed:
            asyncio.run(beta_client(server))
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4000
    assert "beta_api_shape_disabled" in closed.value.rcvd.reason

    with EmbeddedServer(pace=0, dialect="beta") as server:

        async def first_event() -> str:
            client = AsyncOpenAI(
                api_key=server.token,
                base_url=server.base_url,
                websocket_base_url=server.websocket_base_url,
            )
            async with client.beta.realtime.connect(model="gpt-4o-realtime-preview") as conn:
                return (await conn.recv()).type

        assert asyncio.run(first_event()) == "session.created"


def test_a_refusal_by_any_server_says_to_use_ga():
    from rt_notebook.client.session import Session
    from rt_notebook.errors import RealtimeConnectionError

    with EmbeddedServer(pace=0) as server:
        session = Session(
            base_url=server.base_url,
            websocket_base_url=server.websocket_base_url,
            api_key=server.token,
            dialect="beta",
        )
        with pytest.raises(RealtimeConnectionError) as refused:
            session.connect()
        session.close()
    message = str(refused.value)
    assert "beta_api_shape_disabled" in message
    assert 'dialect="ga"' in message
    assert "retired" in message
    assert "OpenAI-Beta" not in message  # the user never set that header


def test_every_sdk_server_event_is_handled_or_ignored_with_a_reason():
    from openai.types.realtime import RealtimeServerEvent

    union = typing.get_args(RealtimeServerEvent)[0]  # Annotated[Union[...], discriminator]
    sdk_types = {
        value
        for cls in typing.get_args(union)
        for value in typing.get_args(cls.model_fields["type"].annotation)
    }
    assert len(sdk_types) > 30, "the SDK's union was not read"
    mirrored = Conversation().event_types
    handled = {
        kind
        for kind in sdk_types
        if kind in mirrored
        or BETA_TO_GA_EVENT.get(kind) in mirrored
        or kind in READ_OUTSIDE_THE_MIRROR
    }
    ignored = {kind for kind in sdk_types if kind in IGNORED_SERVER_EVENTS}
    print(f"server events: {len(handled)} handled, {len(ignored)} ignored, {len(sdk_types)} total")
    undecided = sdk_types - handled - ignored
    assert not undecided, f"server events nobody decided about: {sorted(undecided)}"
    assert not handled & ignored, f"both handled and ignored: {sorted(handled & ignored)}"
    assert all(reason.strip() for reason in IGNORED_SERVER_EVENTS.values())
    # None of them is a protocol error when it arrives.
    assert sdk_types <= KNOWN_SERVER_EVENTS, sorted(sdk_types - KNOWN_SERVER_EVENTS)
    # The lists name only events the SDK knows (no stale entries).
    assert set(IGNORED_SERVER_EVENTS) <= sdk_types
    assert set(READ_OUTSIDE_THE_MIRROR) <= sdk_types

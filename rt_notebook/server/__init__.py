"""Embedded offline Realtime-protocol server: public API of the server package.

A Realtime server on loopback, built on :mod:`websockets`, that speaks OpenAI's Realtime
API with deterministic responders instead of a model, so tutorials, tests and CI run with
no API key and no network. It speaks GA and, like the service, refuses beta clients,
unless started for the beta dialect (old clients, Azure deployments that still use it).

Layers, each module saying which one it is in its first docstring line:

- sans-I/O core: :mod:`.state` (connection state machine), :mod:`.streaming` (a
  response's events tick by tick), :mod:`.plan` (a response's outputs and tokens),
  :mod:`.items` (conversation placement), :mod:`.validation` (client events against the
  SDK's types), :mod:`.admission` (token, model, dialect), :mod:`.shapes` (wire shapes per
  dialect), :mod:`.errors` (error catalogue);
- responders (sans-I/O, pluggable): :mod:`.responders`, :mod:`.toolcall`, :mod:`.tone`;
  live responses that grow while a backend streams them: :mod:`.live`, with the Chat
  Completions mapping in :mod:`.chat_mapping`;
- I/O: :mod:`.driver` (websockets, pacing), :mod:`.embedded` (background thread),
  :mod:`.chat_backend` (a local model through the ``openai`` SDK's chat client),
  :mod:`.cli` (``rt-notebook-server`` / ``python -m rt_notebook.server``).
"""

from rt_notebook.server.chat_backend import ChatResponder
from rt_notebook.server.driver import DriverConfig, start_server
from rt_notebook.server.embedded import EmbeddedServer
from rt_notebook.server.responders import (
    EchoResponder,
    PlannedCall,
    PlannedMessage,
    PlannedOutput,
    Responder,
    ResponseRequest,
    ScriptedResponder,
    ScriptError,
    load_script,
    make_responder,
)
from rt_notebook.server.state import ConnectionState

__all__ = [
    "ChatResponder",
    "ConnectionState",
    "DriverConfig",
    "EchoResponder",
    "EmbeddedServer",
    "PlannedCall",
    "PlannedMessage",
    "PlannedOutput",
    "Responder",
    "ResponseRequest",
    "ScriptError",
    "ScriptedResponder",
    "load_script",
    "make_responder",
    "start_server",
]

"""Function tools (public API of the package): Python callables the model may call.

Three layers, one module each, each usable without the next:

* :mod:`.schema` (pure): :func:`function_tool` turns a callable into a :class:`Tool`, a
  Realtime function-tool schema built by pydantic from the signature's type hints, with a
  description from the docstring (parameter docs too, Google/NumPy/Sphinx style, through
  griffe) and argument validation against that schema. No I/O, no threads.
* :mod:`.registry`: :class:`ToolRegistry` holds tools by name. :data:`default_registry`
  (filled by ``@rt_notebook.tool``) is shared by every Session; each Session adds its own.
* :mod:`.runner`: :class:`Toolbox` (``session.tools``) is the runner of one Session. It
  watches for finished responses that call functions and runs each round on a worker
  thread (never the I/O thread): validate the arguments, ask for approval where the tool
  wants it, run the tool with a timeout, post a ``function_call_output`` for every call
  (errors as ``{"error": ...}``) and request the follow-up response. Only registered
  tools run.
"""

from .registry import ToolRegistry, default_registry, tool
from .runner import (
    ROUND_TAG,
    Approver,
    CallState,
    Toolbox,
    ToolCall,
    ToolRound,
    asking,
    toolbox,
)
from .schema import (
    DEFAULT_TIMEOUT,
    Tool,
    ToolArgumentsError,
    ToolOptions,
    encode_output,
    error_output,
    function_tool,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "ROUND_TAG",
    "Approver",
    "CallState",
    "Tool",
    "ToolArgumentsError",
    "ToolCall",
    "ToolOptions",
    "ToolRegistry",
    "ToolRound",
    "Toolbox",
    "asking",
    "default_registry",
    "encode_output",
    "error_output",
    "function_tool",
    "tool",
    "toolbox",
]

"""Kernel-side helpers of the browser security test: hostile payloads and a hostile server.

Copied next to the test notebook and imported by its kernel. The embedded server (scripted
responder, echo fallback) answers with model text; :class:`HostileProxy` sits between it
and the Session and makes the server itself hostile where the embedded server would
validate: every item's ``assistant`` role becomes :data:`HOSTILE_ROLE`, every item and
call id gets :data:`HOSTILE_SUFFIX` (stripped again on the way back, so the conversation
still works), and a message containing ``INJECT-ERROR`` is answered with an ``error``
event whose every field is hostile.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

SENTINEL = "window.__rt_sentinel=1"
REMOTE = "http://203.0.113.7"  # TEST-NET-3: never routed; any request to it is a leak
HOSTILE_SUFFIX = f'"><img src=x onerror="{SENTINEL}">'
HOSTILE_ROLE = f'assistant"><img src=x onerror="{SENTINEL}"><b class="x'
HOSTILE_NAME = (
    f'tool<img src="{REMOTE}/name.png" onerror="{SENTINEL}">`\n\n<script>{SENTINEL}</script>'
)
HOSTILE_ARGUMENTS = {
    "query": f'```\n<img src="{REMOTE}/args.png" onerror="{SENTINEL}">\n```\n'
    f"<script>{SENTINEL}</script>"
}
TOOL_OUTPUT = f'````\n<img src="{REMOTE}/output.png" onerror="{SENTINEL}">\n![x]({REMOTE}/o.png)'
ERROR_TEXT = f'<img src="{REMOTE}/error.png" onerror="{SENTINEL}"> [e](javascript:{SENTINEL})'

SEPARATORS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r"]

# Groups of payloads; each group is one message (and so one echoed answer).
GROUPS = {
    "html": [
        f"<script>{SENTINEL}</script>",
        f'<img src=x onerror="{SENTINEL}">',
        f'<svg onload="{SENTINEL}"></svg>',
        f'<svg><image href="{REMOTE}/svg.png"/></svg>',
        f'<iframe src="{REMOTE}/frame"></iframe>',
        f'<iframe srcdoc="<script>parent.{SENTINEL}</script>"></iframe>',
        f'<details open ontoggle="{SENTINEL}">x</details>',
        f'<style>@import "{REMOTE}/style.css";</style>',
        f'<div style="background:url({REMOTE}/bg.png)">bg</div>',
        f'<video src="{REMOTE}/v.mp4" autoplay></video><object data="{REMOTE}/o"></object>',
        f'<link rel=stylesheet href="{REMOTE}/l.css"><math><mtext><table><mglyph><style>'
        f'<img src=x onerror="{SENTINEL}">',
        f"&lt;img src=x onerror={SENTINEL}&gt; &#60;script&#62;{SENTINEL}&#60;/script&#62;",
    ],
    "links": [
        f"[js](javascript:{SENTINEL})",
        f"[js2](JaVa&#115;cript:{SENTINEL})",
        f"[js3](javascript\\:{SENTINEL})",
        f"[js4](java&#x09;script:{SENTINEL})",
        f"[js5](javascript&colon;{SENTINEL})",
        "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        f"[vb](vbscript:{SENTINEL})",
        f"<javascript:{SENTINEL}> <{REMOTE}/autolink>",
        f"[ref]\n\n[ref]: javascript:{SENTINEL}",
        f'<a href="javascript:{SENTINEL}">html link</a>',
    ],
    "images": [
        f"![remote]({REMOTE}/md.png)",
        f"![ref][r]\n\n[r]: {REMOTE}/ref.png",
        f'![t]({REMOTE}/t.png "title")',
        "![data](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
        f'<img src="{REMOTE}/raw.png">',
    ],
    "code": [
        f'`<img src=x onerror="{SENTINEL}">` and ``<script>{SENTINEL}</script>``',
        f"`[x](javascript:{SENTINEL}) ![i]({REMOTE}/code.png)`",
        f'```\n<img src=x onerror="{SENTINEL}">\n```',
        f'````\n```\n<img src=x onerror="{SENTINEL}">\n````\n<img src="{REMOTE}/after.png">',
        f'- item\n\n  ```\n  <img src=x onerror="{SENTINEL}">\n  ```\n',
        f'> ```\n> <img src=x onerror="{SENTINEL}">\n',
        f'<div>\n```\n</div>\n<img src=x onerror="{SENTINEL}">\n```',
        f'```\n<img src=x onerror="{SENTINEL}">',
    ],
    "math": [
        f"$\\style{{background-image:url({REMOTE}/math.png)}}{{x}}$",
        f"$$\\href{{javascript:{SENTINEL}}}{{math link}}$$",
        f"$\\href{{{REMOTE}/mh}}{{y}}$ and $x < y$",
    ],
    "separators-1": [
        f'text{sep}```\n<img src=x onerror="{SENTINEL}">\n```\n<img src="{REMOTE}/s{i}.png">'
        for i, sep in enumerate(SEPARATORS[:5])
    ],
    "separators-2": [
        f'```{sep}<img src=x onerror="{SENTINEL}">\n```\n<img src="{REMOTE}/t{i}.png">'
        for i, sep in enumerate(SEPARATORS[4:])
    ]
    + [f"[x]:{sep}javascript:{SENTINEL}\n\n[x]" for sep in SEPARATORS[:3]],
}


def messages() -> list[str]:
    """One message per group, payloads separated by blank lines."""
    return ["\n\n".join(group) for group in GROUPS.values()]


def write_script(path: Path) -> Path:
    """The scripted responder's rules: hostile calls on request, echo otherwise."""
    script = {
        "rules": [
            {"match": "^call lookup$", "call": {"name": "lookup", "arguments": HOSTILE_ARGUMENTS}},
            {
                "match": "^call hostile$",
                "call": {"name": HOSTILE_NAME, "arguments": HOSTILE_ARGUMENTS},
            },
        ]
    }
    path.write_text(json.dumps(script))
    return path


# The hostile proxy ----------------------------------------------------------------------

_ID_KEYS = ("call_id", "item_id", "previous_item_id")


def _tag(value: Any, add: bool, client_ids: set[str]) -> Any:
    """Append (or strip) the hostile suffix on every server-made item and call id.

    Ids the client chose (``client_ids``, collected on the way up) stay as they are, so
    its acknowledgements still match.
    """
    if isinstance(value, list):
        return [_tag(v, add, client_ids) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, original in value.items():
        item = original
        is_id = isinstance(item, str) and (
            key in _ID_KEYS or (key == "id" and item.startswith(("item_", "call_", "msg_", "fc_")))
        )
        if is_id and not add:
            item = item.replace(HOSTILE_SUFFIX, "")
            client_ids.add(item)
        elif is_id and item not in client_ids:
            item = item + HOSTILE_SUFFIX
        elif key == "role" and add and item == "assistant":
            item = HOSTILE_ROLE
        else:
            item = _tag(item, add, client_ids)
        out[key] = item
    return out


class HostileProxy:
    """A websockets relay on 127.0.0.1 in front of an embedded server, made hostile."""

    def __init__(self, upstream: Any) -> None:
        self.upstream = upstream
        self.port = 0
        self._ready = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def websocket_base_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1"

    def start(self) -> HostileProxy:
        threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True).start()
        if not self._ready.wait(30):
            raise RuntimeError("the hostile proxy did not start")
        return self

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        async with serve(self._relay, "127.0.0.1", 0) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await asyncio.Future()

    async def _relay(self, client: Any) -> None:
        from websockets.asyncio.client import connect

        path = client.request.path
        upstream_url = self.upstream.websocket_base_url.rsplit("/v1", 1)[0] + path
        headers = {
            key: value
            for key, value in client.request.headers.raw_items()
            if key.lower() in ("authorization", "api-key", "openai-beta")
        }
        client_ids: set[str] = set()
        async with connect(upstream_url, additional_headers=headers) as server:

            async def down() -> None:
                async for message in server:
                    await client.send(json.dumps(_tag(json.loads(message), True, client_ids)))

            async def up() -> None:
                async for message in client:
                    event = _tag(json.loads(message), False, client_ids)
                    if "INJECT-ERROR" in json.dumps(event):
                        await client.send(json.dumps(_error_for(event)))
                        continue
                    await server.send(json.dumps(event))

            tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()


def _error_for(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "error",
        "event_id": "event_hostile",
        "error": {
            "type": f"invalid_request_error{HOSTILE_SUFFIX}",
            "code": f"hostile{HOSTILE_SUFFIX}",
            "message": ERROR_TEXT,
            "param": f"item{HOSTILE_SUFFIX}",
            "event_id": event.get("event_id"),
        },
    }

"""The reader's frames (``transport.FrameReader``): a burst's whole text frames are taken
from websockets' buffer without a ``recv()`` each, and every frame still arrives once, in
order, as ``recv()`` gives it (text as ``str``, binary as ``bytes``, fragments whole).

A real ``websockets`` server on 127.0.0.1 sends the frames; the client is a real
``websockets`` connection held the way the SDK's connection holds it (``_connection``), and
through the SDK against the embedded server.
"""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from rt_notebook.client.transport import FrameReader, Transport, resolve_endpoint
from rt_notebook.protocol.events import Dialect
from tests.timing import within

# Text, binary, a fragmented text message, non-ASCII text, and enough small text frames
# to pass websockets' flow-control high-water mark (16 by default) several times.
SENT: list[str | bytes | list[str]] = [
    '{"type": "a"}',
    b"\x00\x01binary",
    ["frag", "ment", "ed"],
    "é ✓ 💬",
    *(f'{{"n": {n}}}' for n in range(200)),
    "last",
]
EXPECTED = ["".join(f) if isinstance(f, list) else f for f in SENT]


class SdkLike:
    """What the SDK's AsyncRealtimeConnection offers the reader."""

    def __init__(self, ws):
        self._connection = ws

    async def recv_bytes(self):
        return await self._connection.recv(decode=False)


async def read_like_the_driver(reader, count):
    """The driver's read loop: one ``recv()``, then whatever is buffered; ``(frames,
    taken)``: every frame (with ``binary`` as the driver computes it) and how many came
    from the buffer."""
    frames, taken = [], 0
    while len(frames) < count:
        frame = await reader.recv()
        frames.append((frame, reader.binary_frames and type(frame) is bytes))
        while (text := reader.take_buffered()) is not None:
            frames.append((text, False))
            taken += 1
    return frames, taken


def test_a_burst_arrives_whole_in_order_and_mostly_from_the_buffer():
    async def scenario():
        async def send_all(ws):
            for frame in SENT:
                await ws.send(frame)
            await ws.wait_closed()

        async with serve(send_all, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}") as ws:
                reader = FrameReader(SdkLike(ws))
                assert reader.takes_buffered  # the installed websockets has the buffer
                await asyncio.sleep(0)  # let frames arrive and queue (flow control pauses)
                return await asyncio.wait_for(
                    read_like_the_driver(reader, len(EXPECTED)), within(30)
                )

    frames, taken = asyncio.run(scenario())
    assert [frame for frame, _ in frames] == EXPECTED
    binary = [frame for frame, is_binary in frames if is_binary]
    assert binary == [b"\x00\x01binary"]  # told apart, as recv() tells it
    assert all(type(frame) is str for frame, is_binary in frames if not is_binary)
    assert taken > 0  # the burst path ran (and flow control resumed the paused reading)


def test_without_the_buffer_every_frame_comes_from_recv():
    class Bare:  # a connection exposing only the SDK's public recv_bytes
        def __init__(self):
            self.frames = [b'{"type": "a"}', b'{"type": "b"}']

        async def recv_bytes(self):
            return self.frames.pop(0)

    reader = FrameReader(Bare())
    assert not reader.takes_buffered
    assert not reader.binary_frames
    assert reader.take_buffered() is None
    frames, taken = asyncio.run(read_like_the_driver(reader, 2))
    assert [frame for frame, _ in frames] == [b'{"type": "a"}', b'{"type": "b"}']
    assert taken == 0


@pytest.mark.timeout(within(120))
def test_the_sdk_connection_gives_the_reader_its_buffer():
    async def scenario():
        endpoint, key = resolve_endpoint(dialect=Dialect.GA, offline=True)
        async with Transport(endpoint, key).connection_manager() as connection:
            reader = FrameReader(connection)
            first = await asyncio.wait_for(reader.recv(), within(30))
            return reader.takes_buffered, reader.binary_frames, first

    takes_buffered, binary_frames, first = asyncio.run(scenario())
    assert takes_buffered
    assert binary_frames
    assert isinstance(first, str)
    assert '"session.created"' in first

"""Client layer, I/O thread: the one asyncio loop that every Session in the kernel runs on.

A notebook cell runs inside the kernel's own running loop, where ``asyncio.run`` fails and
long awaits stall the kernel (``docs/architecture.md``). So all network I/O lives on a
daemon thread with its own loop, started on first use; other threads hand it work through
thread-safe calls.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["IOThread"]

T = TypeVar("T")


class IOThread:
    """A daemon thread running an asyncio loop forever; one per process."""

    _instance: IOThread | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="rt_notebook-io", daemon=True)
        self._thread.start()
        # Stop connections cleanly at exit, instead of asyncio warning about pending tasks.
        atexit.register(self.shutdown)

    @classmethod
    def get(cls) -> IOThread:
        """The process-wide I/O thread, started on first use."""
        with cls._instance_lock:
            if cls._instance is None or not cls._instance._thread.is_alive():
                cls._instance = cls()
            return cls._instance

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def shutdown(self, timeout: float = 2.0) -> None:
        """Cancel every task on the loop, then stop the loop and its thread."""
        if not self._thread.is_alive():
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.submit(cancel_all()).result(timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)

    def in_thread(self) -> bool:
        """Whether the caller is running on the I/O thread."""
        return threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule a coroutine on the loop; its result arrives in a concurrent future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Run ``fn(*args)`` on the loop thread (at once when already there)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # delivered to the caller, not swallowed
                future.set_exception(exc)

        if self.in_thread():
            run()
        else:
            self.loop.call_soon_threadsafe(run)
        return future

"""Keeping started servers in the foreground: SIGTERM/SIGINT end the wait, a death ends it too.

with stop_on_signals():
    return wait_while(launcher.running)     # 1 when a server died; Shutdown on a signal
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator
from types import FrameType

POLL_SECONDS = 1.0


class Shutdown(BaseException):
    """SIGTERM or SIGINT: stop what was started and exit 0 (like KeyboardInterrupt, no error)."""


def shutdown_on_signal(signum: int, _frame: FrameType | None) -> None:
    """First SIGTERM/SIGINT: raise Shutdown in the main thread; later ones: ignored."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise Shutdown(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into Shutdown while inside (previous handlers restored after)."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, shutdown_on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_while(alive: Callable[[], bool], poll: float = POLL_SECONDS) -> int:
    """Sleep while `alive()` holds; 1 once it stops holding (something died on its own)."""
    while alive():
        time.sleep(poll)
    return 1


def serve_until_stopped(
    serve: Callable[[], int],
    log: logging.Logger,
    errors: tuple[type[Exception], ...],
    stopped: str = "stopped",
) -> int:
    """An entry point's exit status: `serve()`'s under `stop_on_signals`, 0 after SIGTERM/SIGINT
    (logged as "<signal>: `stopped`"), 1 after one of `errors` (logged)."""
    try:
        with stop_on_signals():
            return serve()
    except Shutdown as exc:
        log.info("%s: %s", exc, stopped)
        return 0
    except errors as exc:
        log.error("%s", exc)
        return 1

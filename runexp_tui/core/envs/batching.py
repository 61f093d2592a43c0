"""Running one environment step with its events batched: a producer thread runs the step, the
caller's thread hands its events on in batches (output lines coalesced per ~50 ms, state changes
at once), so a UI is never flooded by pip's output. No UI here: ``emit`` is the caller's.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from runexp_tui.core.envs.steps import Event, OutputLine, Step, StepFinished

FLUSH_SECONDS = 0.05  # output lines are batched for this long before one batch carries them
MAX_FLUSH_SECONDS = 0.5  # the longest a line waits when the receiver is backed up
_DONE = object()


def flush_interval(backlog: int) -> float:
    """~50 ms, longer while the receiver is behind: bigger batches, fewer of them to catch up on."""
    return min(MAX_FLUSH_SECONDS, FLUSH_SECONDS * (1 + backlog / 8))


def run_batched(
    step: Step,
    cancel: threading.Event,
    emit: Callable[[list[Event]], object],
    interval: Callable[[], float],
) -> StepFinished | None:
    """Run one step in a producer thread; ``emit`` its events in batches; return its end.

    ``interval`` is asked, at each batch's first event, how long that batch may wait.
    """
    events: queue.Queue[object] = queue.Queue()

    def produce() -> None:
        try:
            for event in step.run(cancel):
                events.put(event)
        finally:
            events.put(_DONE)

    threading.Thread(target=produce, name=f"env-step-{step.id}", daemon=True).start()
    batch: list[Event] = []
    deadline = 0.0
    finished: StepFinished | None = None
    while True:
        timeout = max(0.0, deadline - time.monotonic()) if batch else None
        try:
            item = events.get(timeout=timeout)
        except queue.Empty:
            emit(batch)
            batch = []
            continue
        if item is _DONE:
            break
        event: Event = item  # type: ignore[assignment]
        if not batch:
            deadline = time.monotonic() + interval()
        batch.append(event)
        if isinstance(event, StepFinished):
            finished = event
        # State changes show at once; lines wait for the batch's deadline.
        if not isinstance(event, OutputLine) or time.monotonic() >= deadline:
            emit(batch)
            batch = []
    if batch:
        emit(batch)
    return finished


__all__ = ["FLUSH_SECONDS", "MAX_FLUSH_SECONDS", "flush_interval", "run_batched"]

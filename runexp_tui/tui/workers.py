"""The one way a thread worker hands its results to the UI: `deliver` and `post`.

Every background job in the app is a Textual thread worker (`@work(thread=True, ...)`),
usually `exclusive` in its group so that a newer job cancels the one before it (a second repo
path typed while the first is still being scanned). A thread cannot be stopped, though: the
old job runs to its end and would then write its stale answer over the newer one. So a worker
hands each result over through one of these two, which drop it once the worker is cancelled:

- `deliver` (one result): checks, on the UI thread, that the worker was not cancelled
  meanwhile, and only then applies the result, so the last request wins whatever order the
  threads finish in.
- `post` (a stream: a poll loop, a pump of step events, a GPU poller running on the worker's
  thread): posts a typed message unless the worker is cancelled. The message queue keeps
  order, so a result posted before the cancel is handled before the newer job's.

Either way the result also carries what it was computed for (a run's follow generation, a
repo, a path), and its handler drops one that no longer matches on arrival. A loop in a worker
checks ``get_current_worker().is_cancelled`` on each round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from textual.app import App
from textual.message import Message
from textual.message_pump import MessagePump
from textual.worker import get_current_worker

P = ParamSpec("P")
R = TypeVar("R")  # the app's return type


def deliver(app: App[R], apply: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
    """From inside a thread worker: run ``apply(*args, **kwargs)`` on the UI thread, unless
    the worker has been cancelled (replaced by a newer one of its group) by then."""
    worker = get_current_worker()

    def current() -> None:
        if not worker.is_cancelled:
            apply(*args, **kwargs)

    app.call_from_thread(current)


def post(target: MessagePump, message: Message) -> bool:
    """From inside a thread worker: post ``message`` to ``target`` unless the worker has been
    cancelled; True when it was posted."""
    if get_current_worker().is_cancelled:
        return False
    return target.post_message(message)


def cancelled() -> bool:
    """From inside a thread worker: has it been cancelled (a loop's exit test)?"""
    return get_current_worker().is_cancelled


__all__ = ["cancelled", "deliver", "post"]

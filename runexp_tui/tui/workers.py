"""The one way a thread worker hands its result to the UI: `deliver`.

Every background job in the app is a Textual thread worker (`@work(thread=True, ...)`),
usually `exclusive` in its group so that a newer job cancels the one before it (a second repo
path typed while the first is still being scanned). A thread cannot be stopped, though: the
old job runs to its end and would then write its stale answer over the newer one. `deliver`
checks, on the UI thread, that the worker was not cancelled meanwhile, and only then applies
the result, so the last request always wins whatever order the threads finish in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.worker import get_current_worker


def deliver(app: App[Any], apply: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    """From inside a thread worker: run ``apply(*args, **kwargs)`` on the UI thread, unless
    the worker has been cancelled (replaced by a newer one of its group) by then."""
    worker = get_current_worker()

    def current() -> None:
        if not worker.is_cancelled:
            apply(*args, **kwargs)

    app.call_from_thread(current)

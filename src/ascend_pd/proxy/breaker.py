"""Per-backend circuit breakers fed by the outcomes of real requests.

The health prober sees one ``GET /health`` every couple of seconds; a backend whose engine
answers 500 to every completion (or resets every connection) still passes it. A breaker
watches what real legs get back instead:

* ``closed``: traffic flows; ``failure_threshold`` consecutive failures open it.
* ``open``: no traffic for ``open_s`` seconds.
* ``half_open``: exactly one request (the probe) is let through. Its success closes the
  breaker, its failure opens it again for another ``open_s``.

Only network errors (refused/reset connections, timeouts, malformed answers) and 5xx count
as failures. A 4xx is the *client's* problem (bad model name, prompt too long): the backend
answered, so it counts as a success. Pure state and an injectable clock: no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


@dataclass
class Breaker:
    """The breaker of one backend."""

    failure_threshold: int = 5
    open_s: float = 10.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    state: BreakerState = "closed"
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False
    opened_total: int = 0

    def _refresh(self) -> None:
        if self.state == "open" and self.clock() - self.opened_at >= self.open_s:
            self.state, self.probing = "half_open", False

    def allows(self) -> bool:
        """May a request be sent now? (Does not take the half-open probe slot.)"""
        self._refresh()
        if self.state == "closed":
            return True
        return self.state == "half_open" and not self.probing

    def on_send(self) -> None:
        """A request was sent: in half-open state it is the one probe."""
        self._refresh()
        if self.state == "half_open":
            self.probing = True

    def record(self, ok: bool) -> BreakerState | None:
        """Count an outcome; returns the new state when it changed."""
        self._refresh()
        if ok:
            self.failures = 0
            if self.state != "closed":
                self.state, self.probing = "closed", False
                return "closed"
            return None
        self.failures += 1
        if self.state == "half_open" or (self.state == "closed"
                                         and self.failures >= self.failure_threshold):
            self.state, self.probing = "open", False
            self.opened_at = self.clock()
            self.opened_total += 1
            return "open"
        return None

    def retry_after_s(self) -> float:
        """Seconds until an open breaker half-opens (0 when it takes traffic)."""
        self._refresh()
        if self.state != "open":
            return 0.0
        return max(0.0, self.open_s - (self.clock() - self.opened_at))


def is_failure(status: int | None) -> bool:
    """The breaker's rule: no answer (``None``: network error, timeout) or a 5xx."""
    return status is None or status >= 500

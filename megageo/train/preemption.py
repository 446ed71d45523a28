"""Stop cleanly when asked: SIGTERM (a PBS job reaching its walltime) makes the loop save and leave.

The signal may reach ranks at different steps, so the decision is taken collectively after every step: if any
rank was signalled, all of them stop after the same step and write one consistent checkpoint.
"""

from __future__ import annotations

import signal
from types import FrameType

from megageo.parallel import groups


class Preemption:
    def __init__(self) -> None:
        self.signalled = self.stopping = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signalled = True

    def agreed(self) -> bool:
        """Whether any rank has been signalled (a collective: every rank calls it after every step)."""
        self.stopping = groups.any_rank(self.signalled)
        return self.stopping

    def restore(self) -> None:
        """The previous handler back, unless the job is stopping for a SIGTERM: then the signal may still be on its
        way to ranks that have not seen it (a scheduler signals them one by one), and its default action would
        kill a rank that has already saved, turning a clean stop into a failed job. Ignoring it (rather than
        keeping a Python handler, which the interpreter resets while it shuts down) covers the exit too."""
        signal.signal(signal.SIGTERM, signal.SIG_IGN if self.stopping else self._previous)

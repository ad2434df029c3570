"""Where the model load stands, and how /readyz says it without internals.

The state lives in a few bytes of anonymous shared memory, so that with forked workers the parent, which
does the loading, can tell workers that are already serving (unready) how it goes. A torn read across
processes can only mix the attempt count of two neighbouring reports: it shows in a message, nothing more.
"""

import mmap
import struct
from dataclasses import dataclass
from enum import IntEnum


class LoadState(IntEnum):
    """The steps of loading the model, as /readyz reports them."""

    LOADING = 0
    RETRYING = 1
    GAVE_UP = 2


@dataclass(frozen=True)
class LoadStatus:
    """One report: the state and how many attempts have failed so far."""

    state: LoadState
    failed_attempts: int

    def reason(self, budget_seconds: float) -> str:
        """Why the API is not ready, in words safe to show anyone: the cause itself (an exception naming
        the tracking URL, the model or a path) is only in the server's log."""
        if self.state is LoadState.LOADING:
            return "The model is loading."
        if self.state is LoadState.RETRYING:
            return (
                f"The model could not be loaded yet (failed attempts: {self.failed_attempts}); retrying "
                f"for up to {budget_seconds:g}s from start. The cause is in the server's log."
            )
        return (
            f"The model could not be loaded within {budget_seconds:g}s (failed attempts: "
            f"{self.failed_attempts}); the cause is in the server's log. The platform's probe will restart "
            "this instance."
        )


_LAYOUT = struct.Struct("<BI")


class LoadProgress:
    """The latest `LoadStatus`, shared with processes forked after it was made."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, _LAYOUT.size)  # anonymous, MAP_SHARED: children see our writes
        self.report(LoadStatus(LoadState.LOADING, 0))

    def report(self, status: LoadStatus) -> None:
        """Record the latest status."""
        self._memory[:] = _LAYOUT.pack(status.state, status.failed_attempts)

    def current(self) -> LoadStatus:
        """The latest status recorded by any process that shares this memory."""
        state, failed = _LAYOUT.unpack(self._memory[:])
        return LoadStatus(LoadState(state), failed)

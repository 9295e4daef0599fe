"""Which calls `aiaas serve`'s gateway app runs inline on its event loop, and which on a thread.

A cheap function's whole handler takes tens of microseconds, less than a hop to a thread, so it
runs inline; one whose recent calls average over OFFLOAD_AFTER_S of CPU, or over OFFLOAD_MODEL_S
in its model (onnxruntime, which releases the GIL), runs on a thread (fair_pool.py).
"""

from __future__ import annotations

OFFLOAD_AFTER_S = 0.002
OFFLOAD_MODEL_S = (
    0.0001  # the demo's MLP and CNN spend ~0.01 ms in onnxruntime, its transformer ~0.19
)
TIME_EVERY = 16  # an inline route's calls per timed one


class Timing:
    """Per-route moving average of handler time, to decide inline vs thread pool.

    A route's first call goes to the pool: it may be a cold start (a model load, a FastAPI
    import) that must not stall the event loop.
    """

    MAX_PATHS = 10_000  # routes' paths (each version's, each model's) kept at most

    def __init__(self) -> None:
        self.average: dict[str, float] = {}
        self.model: dict[str, float] = {}  # the function's own average time in its model

    def slow(self, key: str) -> bool:
        return (
            self.average.get(key, 1.0) > OFFLOAD_AFTER_S
            or self.model.get(key, 0.0) > OFFLOAD_MODEL_S
        )

    def record(
        self, key: str, seconds: float, model_seconds: float = 0.0, status: int = 200
    ) -> None:
        """Fold in one call's time; a 404's path is not kept: a scan of unknown paths (or
        versions) filled the table and, at the cap, cleared the real routes' times with it."""
        if status == 404:
            return
        if len(self.average) >= self.MAX_PATHS and key not in self.average:
            self.average.clear()
            self.model.clear()
        self.average[key] = 0.9 * self.average.get(key, seconds) + 0.1 * seconds
        self.model[key] = model_seconds

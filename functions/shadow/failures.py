"""A failing shadow said once a reason, not once a copy.

A shadow version that fails (a model that cannot answer the callers' batch sizes, a version
that answers other outputs) fails every sampled copy the same way: one WARNING a copy was 200
lines a second in the shadow function's log group at `--sample 0.2` and 500 requests a second,
for what `aiaas_shadow_errors_total` counts anyway. So each version pair says each reason once
(at most MOST_REASONS of them), with the first failing copy's `request_id` as a field, until
the shadow answers a copy again, which is said too, with how many failed meanwhile.
"""

from __future__ import annotations

import logging
import threading

from functions.predict.telemetry import ShadowLabels

MOST_REASONS = 8  # reasons said per version pair until it answers again
MOST_PAIRS = 1024  # version pairs remembered (all forgotten past it: said once more)


class ShadowFailures:
    """Which failures of each version pair were said since it last answered a copy."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._said: dict[ShadowLabels, tuple[set[str], list[int]]] = {}  # reasons, [copies]
        self._lock = threading.Lock()

    def failed(self, labels: ShadowLabels, reason: str, request_id: str) -> None:
        """A copy of `labels` failed for `reason`: logged if that reason is new to the pair."""
        with self._lock:
            said = self._said.get(labels)
            if said is None:
                if len(self._said) >= MOST_PAIRS:
                    self._said.clear()
                said = self._said[labels] = (set(), [0])
            reasons, copies = said
            copies[0] += 1
            if reason in reasons or len(reasons) >= MOST_REASONS:
                return
            reasons.add(reason)
        model, version, shadow = labels
        fields = {"model": model, "version": version, "shadow_version": shadow}
        self.log.warning(
            "shadow %s of %s:%s failed: %s (said once until it answers a copy again; "
            "aiaas_shadow_errors_total counts every copy)",
            shadow,
            model,
            version,
            reason,
            extra={**fields, "request_id": request_id},
        )

    def answered(self, labels: ShadowLabels) -> None:
        """A copy of `labels` answered: said if its failures were (one dict look-up if not)."""
        if labels not in self._said:
            return
        with self._lock:
            said = self._said.pop(labels, None)
        if said is not None:
            model, version, shadow = labels
            self.log.info(
                "shadow %s of %s:%s answers again (%d copies failed since it was said)",
                shadow,
                model,
                version,
                said[1][0],
                extra={"model": model, "version": version, "shadow_version": shadow},
            )

"""A served version's drift baseline, read into the histograms its requests are counted in,
or None when it cannot be monitored (a baseline that does not read as one, or does not fit the
version). The histograms' modules (~3 ms to import) only once a version has a baseline to read:
a model without one never imports them (tests/functions/test_predict_start_imports.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from functions.runtime.drift.watched import BASELINE_FILE
from functions.runtime.errors import AiaasError, IntegrityError
from functions.runtime.model import LoadedModel
from functions.runtime.store import ObjectStore
from functions.runtime.version_extras import read_version_file

if TYPE_CHECKING:
    from functions.runtime.drift.live import LiveHistograms

log = logging.getLogger("aiaas.drift")  # under `aiaas`: JSON lines as the function's others


def read_live(store: ObjectStore, model: LoadedModel) -> LiveHistograms | None:
    """The version's baseline, read once; None (not monitored) when it does not fit.
    NotFound: it has none (yet); StoreError or ServiceUnavailable: the store could not say."""
    manifest = model.manifest
    try:  # checked against the manifest's sha256 where it lists it, as the model is
        data = read_version_file(store, manifest, BASELINE_FILE)
    except IntegrityError as exc:  # changed in the store since publishing: never counted
        log.error("drift not monitored: %s", exc.message)  # names the version and the file
        return None
    from functions.runtime.drift.baseline import DriftBaseline
    from functions.runtime.drift.fits import why_unfit
    from functions.runtime.drift.live import LiveHistograms

    try:
        baseline = DriftBaseline.from_json(data)
    except AiaasError as exc:  # a baseline that cannot be read as one: so it stays
        log.warning("%s: drift not monitored: %s", model.ref, exc.message)
        return None
    why = why_unfit(manifest, baseline, text=model.text is not None)
    if why is not None:
        log.warning("%s: drift not monitored: %s", model.ref, why)
        return None
    return LiveHistograms(baseline, manifest, model.text)

"""Errors of the serving core; each one knows the HTTP status it maps to.

One place (the adapters' response builders) turns these into `{"error": ...}` bodies.
Messages of 4xx errors are written for the caller: they say what to fix. For 5xx
errors only `public_message` leaves the process; the detail goes to the logs.
"""

from __future__ import annotations

from http import HTTPStatus


class AiaasError(Exception):
    """Base of every error the serving core raises on purpose."""

    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, message: str, *, public_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self._public_message = public_message

    @property
    def public_message(self) -> str:
        """What a client may see: the message itself for 4xx (or, given one, its public form:
        a store's 404 leaves out where the store is), a safe summary for 5xx."""
        if self.status < HTTPStatus.INTERNAL_SERVER_ERROR:
            return self._public_message or self.message
        return self._public_message or "internal error"


class BadRequest(AiaasError):
    """The request cannot be parsed (malformed JSON, bad headers, unknown fields)."""

    status = HTTPStatus.BAD_REQUEST


class InvalidName(BadRequest):
    """A model name, version or alias that is not allowed (e.g. path traversal)."""


class ManifestError(BadRequest):
    """A manifest that is missing a field, has a wrong type or an unknown schema version."""


class NotFound(AiaasError):
    """Something named by the caller does not exist."""

    status = HTTPStatus.NOT_FOUND


class ModelNotFound(NotFound):
    """No model of that name, version or alias in the registry."""


class VersionPruned(ModelNotFound):
    """A version `aiaas prune` (or a control-plane delete) deleted. `settled`: its prune run
    ended long enough ago that nothing puts it back; its number is never published again."""

    def __init__(self, message: str, *, settled: bool = False) -> None:
        super().__init__(message)
        self.settled = settled


class MethodNotAllowed(AiaasError):
    """The path exists but not for this HTTP method."""

    status = HTTPStatus.METHOD_NOT_ALLOWED


class Conflict(AiaasError):
    """The request contradicts what is stored (e.g. publishing an existing version)."""

    status = HTTPStatus.CONFLICT


class VersionExists(Conflict):
    """Versions are immutable: this one was published already."""


class PayloadTooLarge(AiaasError):
    """The request body is over the configured limit."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class ResponseTooLarge(PayloadTooLarge):
    """The answer to the request is over the response limit: a smaller request fits."""


class UnsupportedMediaType(AiaasError):
    """A body in an encoding (Content-Encoding) the server cannot read."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class InvalidInput(AiaasError):
    """Well-formed request whose tensors do not fit the model (names, dtypes, shapes, values)."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY


class NonFiniteAnswer(AiaasError):
    """The model answered NaN or infinity for finite inputs: a 500, the model failed (a
    float16 overflow, a float64 sum cast to float32). Its own class so that work over a file's
    rows (`aiaas explain --file`) makes it the error line of the rows that meet it, as batch
    does, where it ended the whole run."""


class ModelUnavailable(AiaasError):
    """The model exists but cannot be served right now (store down, load failed, bad artifact)."""

    status = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self, message: str, *, public_message: str | None = None) -> None:
        super().__init__(message, public_message=public_message or "model is not available")


class ServiceUnavailable(AiaasError):
    """A service other than the store (Step Functions, ...) refused or failed; try again."""

    status = HTTPStatus.SERVICE_UNAVAILABLE


class Busy(ServiceUnavailable):
    """Too much work waits here already (a local queue is full): a 503 with `Retry-After`."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message, public_message=message)  # says what to do: no internals
        self.retry_after_s = retry_after_s


class IntegrityError(ModelUnavailable):
    """A model file whose sha256 differs from its manifest: never served."""


class StoreError(ModelUnavailable):
    """The object store could not be reached or answered an unexpected error."""

    # The answer to a request about the store itself (readiness, the control plane), where
    # "model is not available" misleads; a model's own requests keep that. Never the store's
    # name or address (5xx leak nothing): the log says which store, and why.
    about_store: str | None = "the model store failed; the server's log says why"


class StoreUnreachable(StoreError):
    """The store did not answer: no connection, or it timed out."""

    about_store = "the model store is not reachable"


class StoreUnavailable(StoreError):
    """The store answered that it is failing for now (a 5xx, throttling) after the client's
    retries: transient as unreachable is, and not the operator's to fix as access denied is."""

    about_store = "the model store is failing for now; retry"


class StoreFull(StoreError):
    """A directory store's disk has no room (or its quota is spent) for a write."""

    # A caller could not tell it from an outage ("the model store failed"): this one waits for
    # an operator, not for a retry.
    about_store = "the model store has no space left: an operator must free some"


class StoreReadOnly(StoreError):
    """A directory store on a read-only filesystem was asked to write."""

    about_store = "the model store is read-only here: changes must be made where it is written"


class CorruptRecord(StoreError):
    """A registry record (manifest, alias) that cannot be read: a fault of the store's, not
    the caller's, and of that one model only."""

    about_store = None  # the model's: "model is not available" is right


def public_answer(exc: AiaasError) -> str:
    """What a request about the store or the registry (not one model) may see of `exc`."""
    return getattr(exc, "about_store", None) or exc.public_message


class KeyClash(StoreError):
    """A directory store's key that another key blocks (`a.csv` a file, for `a.csv/b.csv`; or
    a folder of keys): S3 holds both, a directory cannot. A 503 where the store's own layout is
    broken (a file `models`); where callers name the keys (batch jobs), the caller's 409 or 404
    (`clash`: what to tell them)."""

    def __init__(self, message: str, clash: str) -> None:
        super().__init__(message)
        self.clash = clash


class PreconditionFailed(AiaasError):
    """A conditional write (`If-Match`, `If-None-Match`) whose condition no longer holds."""

    status = HTTPStatus.PRECONDITION_FAILED

"""`aiaas publish` refuses a model name that differs from another model's only in '-', '_' or
'.': both would be served by one predict function (one logical id), in the template as in
`aiaas serve`, and the later one answered every request of both."""

from __future__ import annotations

from functions.runtime import names
from functions.runtime.errors import BadRequest
from functions.runtime.registry import Registry
from infra.local.stack import predict_logical_id, same_function


def refuse_lookalike(reg: Registry, name: str) -> None:
    """BadRequest naming the published model `name` would share a function with. The model
    folders come from one delimiter listing (a request per 1,000 models): the walk of every
    key of the store it was grew with every file of every version (~100 requests for 100,000
    keys). Only a lookalike's own versions are listed: its folder may hold no published one
    (a publish running now, or killed outright)."""
    folders = [m for m in reg.store.list_dirs("models") if names.is_model_name(m)]
    while (other := same_function(name, folders)) is not None:
        if reg.versions(other, missing_ok=True):
            raise BadRequest(
                f"model name {name!r} differs from this store's {other!r} only in '-', '_' or "
                f"'.': both would be served by one function ({predict_logical_id(name)}), in "
                "the template as in aiaas serve; choose another name"
            )
        folders.remove(other)

"""CORS in template.yaml as `sam deploy` sends it (`CorsAllowOrigins` set): the origins given,
and the headers the API reads and answers beyond the CORS-safelisted ones."""

from __future__ import annotations

import re

from functions.predict.caller_ids import REQUEST_ID_HEADER, TRACEPARENT_HEADER
from functions.predict.http import ROUTING_HEADER, VERSION_HEADER
from functions.runtime.codecs.oip import BINARY_HEADER
from infra.template import load_template
from tests.infra.conftest import Packaged
from tests.infra.test_template_checks import sam_transform


def test_cors_lists_the_origins_given(packaged: Packaged) -> None:
    origins = "https://app.example.com,https://admin.example.com"
    resources = sam_transform(packaged.template(), CorsAllowOrigins=origins)["Resources"]
    condition, cors, otherwise = resources["Api"]["Properties"]["Body"]["x-amazon-apigateway-cors"][
        "Fn::If"
    ]
    assert (condition, otherwise) == ("HasCors", {"Ref": "AWS::NoValue"})
    assert cors["allowOrigins"] == {"Fn::Split": [",", origins]}  # a list once CloudFormation runs
    assert "inference-header-content-length" in cors["exposeHeaders"]


# Each header the API reads from a caller, or answers with, that is not CORS-safelisted: a
# browser app on an allowed origin cannot send one its preflight does not allow, nor read one
# not exposed. The predict function's own names are taken from its code.
SENT = {
    BINARY_HEADER,  # OIP's binary tensors
    "content-encoding",  # gzip bodies (functions/runtime/content_coding.py)
    "if-match",  # an alias's compare-and-swap (docs/deploy.md, section 6), a rollout's abort
    "if-none-match",  # ... and a read that is a 304 while nothing changed
    ROUTING_HEADER,  # a caller stuck to one version of a split alias
    TRACEPARENT_HEADER,  # a traced page's trace id, logged (docs/monitoring.md; hunt_journey10 3)
    REQUEST_ID_HEADER,  # ... and its own request id
}
ANSWERED = {
    BINARY_HEADER,
    "apigw-requestid",  # the id a caller quotes to find its request's log lines (hunt_ops 5)
    "etag",  # what If-Match sends back
    "location",  # an alias put: where it is
    "retry-after",  # a 503 when too much work waits
    "x-aiaas-tokenizer",  # the tokenizer route's kind
    VERSION_HEADER,  # the version that answered, on every response (README)
}


def test_cors_allows_the_headers_the_api_reads_and_exposes_those_it_answers(
    packaged: Packaged,
) -> None:
    """The template as `sam deploy` sends it, with CorsAllowOrigins set: before, a browser
    app could neither send If-Match nor read an ETag or x-aiaas-version (hunt_deploy.md #6)."""
    resources = sam_transform(packaged.template(), CorsAllowOrigins="https://app.example.com")
    body = resources["Resources"]["Api"]["Properties"]["Body"]
    _, cors, _ = body["x-amazon-apigateway-cors"]["Fn::If"]
    assert SENT - {h.lower() for h in cors["allowHeaders"]} == set()
    assert ANSWERED - {h.lower() for h in cors["exposeHeaders"]} == set()
    assert {"authorization", "content-type"} <= set(cors["allowHeaders"])  # and still these


def test_no_route_takes_a_preflight_to_the_authorizer(packaged: Packaged) -> None:
    """API Gateway answers a CORS preflight itself only where no route takes OPTIONS: an ANY
    route does, and its authorizer refused the browser's preflight (no Authorization on it),
    so no page could call the control plane (`ANY /control/{proxy+}`, hunt_journey10 2)."""
    resources = sam_transform(packaged.template(), CorsAllowOrigins="https://app.example.com")
    paths = resources["Resources"]["Api"]["Properties"]["Body"]["paths"]
    taking = {
        (path, method)
        for path, route in paths.items()
        for method in route
        if method in ("x-amazon-apigateway-any-method", "options")
    }
    assert taking == set()
    control = set(paths["/control/{proxy+}"])
    assert {"get", "head", "post", "put", "delete", "patch"} <= control


def test_an_origin_with_a_path_is_refused_at_deploy() -> None:
    """A browser's Origin has no path: `https://app.example.com/` deployed fine and matched no
    request, every call a browser "network error" (hunt_journey10 3)."""
    rule = re.compile(load_template()["Parameters"]["CorsAllowOrigins"]["AllowedPattern"])
    for good in ("", "https://app.example.com", "https://a.example.com,http://localhost:5173"):
        assert rule.fullmatch(good), good
    for bad in ("https://app.example.com/", "https://app.example.com/app", "app.example.com"):
        assert not rule.fullmatch(bad), bad

"""Call the deployed API with SigV4 (AuthMode IAM, the default) or a JWT, from the command line.

    python -m infra.call POST "$API_URL/models/digits-mlp/predict" -d '{"inputs": [[0, ...]]}'
    python -m infra.call GET "$API_URL/control/models"
    python -m infra.call GET "$API_URL/v2/health/ready" --token "$ID_TOKEN"     # JWT authorizer
    python -m infra.call GET http://127.0.0.1:8080/v2/health/ready --token-file /etc/aiaas/tokens

SigV4 signs for service `execute-api` with your AWS credentials (environment, profile or SSO,
as boto3 finds them) in the region named by the URL; the caller needs `execute-api:Invoke` on
the API. Prints the status line to stderr and the body to stdout.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from functions.runtime.errors import BadRequest
from infra.extras import install_hint
from infra.local.address import token_problem
from infra.local.client_token import ClientToken
from infra.local.credential_redirects import open_url

SERVICE = "execute-api"


def region_of(url: str) -> str:
    """`us-east-1` from https://<id>.execute-api.us-east-1.amazonaws.com/..."""
    parts = (urlsplit(url).hostname or "").split(".")
    if len(parts) < 4 or parts[1] != SERVICE:
        raise ValueError(f"{url}: not an execute-api URL; pass --region")
    return parts[2]


def signed_headers(
    method: str, url: str, body: bytes, headers: Mapping[str, str], credentials: Any, region: str
) -> dict[str, str]:
    """`headers` plus SigV4's Authorization, X-Amz-Date (and token) for this exact request."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    return dict(request.headers.items())


def call(method: str, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
    if urlsplit(url).scheme not in ("https", "http"):
        raise ValueError(f"{url}: not an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, data=body or None, method=method, headers=dict(headers)
    )
    try:
        with open_url(request, timeout=60) as response:  # a token goes to no other origin
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.call",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keep the examples' lines
    )
    parser.add_argument("method", type=str.upper)
    parser.add_argument("url")
    parser.add_argument("-d", "--data", default="", help="request body (JSON); @file reads a file")
    parser.add_argument("--content-type", default="application/json")
    bearer = parser.add_mutually_exclusive_group()
    bearer.add_argument("--token", help="a JWT (Cognito ID token) instead of SigV4")
    bearer.add_argument(
        "--token-file",
        metavar="PATH",
        help="instead of SigV4, the first token in this file of tokens, one a line (`aiaas "
        "serve`'s AIAAS_API_TOKEN_FILE), read as serve reads it",
    )
    parser.add_argument("--region", help="default: from the URL")
    args = parser.parse_args(argv)
    try:
        if args.token_file is not None:
            args.token = ClientToken.from_settings(None, args.token_file)()
        elif args.token and (problem := token_problem(args.token)) is not None:
            # `sëcret` went out as Latin-1 (a 401), `tok\x01` as granian's bare 400: say why.
            raise BadRequest(f"--token {problem}; pass the token as it was issued")
        return _send(args)
    except BadRequest as exc:  # a token no header carries; the file unreadable or with none
        print(f"python -m infra.call: error: {exc.message}", file=sys.stderr)
        return 2
    except (ValueError, OSError, ModuleNotFoundError) as exc:
        # A missing extra (boto3 for SigV4), a URL that names no region, an unreadable @file,
        # no server: one line that says what to do, as the aiaas CLI answers, not a traceback.
        hint = install_hint(exc)
        if isinstance(exc, ModuleNotFoundError) and hint is None:
            raise  # a module of aiaas itself or of the base install: a bug, keep the traceback
        print(f"python -m infra.call: error: {hint or exc}", file=sys.stderr)
        return 2


def _send(args: argparse.Namespace) -> int:
    body = _body(args.data)
    headers = {"content-type": args.content_type} if body else {}
    if args.token:
        headers["authorization"] = f"Bearer {args.token}"
    else:
        import boto3

        credentials = boto3.Session().get_credentials()
        if credentials is None:
            raise ValueError(
                "no AWS credentials found for SigV4 (aws configure, or AWS_PROFILE); "
                "a JWT authorizer takes --token instead"
            )
        region = args.region or region_of(args.url)
        headers = signed_headers(args.method, args.url, body, headers, credentials, region)
    status, answer = call(args.method, args.url, body, headers)
    print(f"HTTP {status}", file=sys.stderr)
    sys.stdout.write(answer.decode(errors="replace") + "\n")
    return 0 if status < 400 else 1


def _body(data: str) -> bytes:
    if data.startswith("@"):
        return Path(data[1:]).read_bytes()
    return data.encode()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Evaluates cohortd experiments through OpenFeature with the stock flagd provider.

No generated code and no cohortd-specific library: cohortd serves flagd's
evaluation protocol on its gRPC port, so an app that already uses OpenFeature's
flagd provider (RPC resolver) only points it at the sidecar.

    pip install openfeature-sdk openfeature-provider-flagd
    python examples/python/openfeature_example.py --user u-7

Flags: --host/--port (default $FLAGD_HOST/$FLAGD_PORT or 127.0.0.1:8013), --user
(the targeting key), then attr=value context pairs.

Prints one line per flag as key=value pairs (read by tests/examples_python.rs):

    flag key=... type=... variant=... reason=... error=... value=<JSON>
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext


def parse_attrs(pairs: list[str]) -> dict:
    attrs: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise SystemExit(f"context pair {pair!r} is not attr=value")
        try:
            attrs[key] = json.loads(raw)
        except json.JSONDecodeError:
            attrs[key] = raw
    return attrs


def show(key: str, kind: str, details) -> None:
    error = details.error_code.value if details.error_code else "none"
    # The JSON value goes last: it may contain spaces.
    print(
        f"flag key={key} type={kind} variant={details.variant} reason={details.reason} "
        f"error={error} value={json.dumps(details.value, separators=(',', ':'))}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default=os.environ.get("FLAGD_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("FLAGD_PORT", "8013")))
    ap.add_argument("--user", default="u-7")
    ap.add_argument("context", nargs="*", metavar="attr=value")
    args = ap.parse_args()

    provider = FlagdProvider(
        host=args.host,
        port=args.port,
        tls=False,
        resolver_type=ResolverType.RPC,
        deadline_ms=5000,
    )
    api.set_provider_and_wait(provider)
    client = api.get_client("cohortd-example")
    # The targeting key is the unit id the variant is hashed on; experiments
    # that hash another attribute (userId here) read it from the attributes.
    ctx = EvaluationContext(
        targeting_key=args.user,
        attributes={"userId": args.user, **parse_attrs(args.context)},
    )

    show("payments-enabled", "boolean", client.get_boolean_details("payments-enabled", False, ctx))
    show("upload-limit-mb", "integer", client.get_integer_details("upload-limit-mb", 0, ctx))
    show("homepage-banner", "string", client.get_string_details("homepage-banner", "", ctx))
    show("exp-checkout-flow-v3", "string", client.get_string_details("exp-checkout-flow-v3", "control", ctx))
    # Unknown flags return the caller's default with FLAG_NOT_FOUND, never raise.
    show("no-such-flag", "boolean", client.get_boolean_details("no-such-flag", True, ctx))

    api.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

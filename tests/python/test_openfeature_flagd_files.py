"""The real OpenFeature Python SDK with the flagd provider against a cohortd
serving a flagd-format flag file, in RPC mode (flagd.evaluation.v2 calls,
EventStream) or IN-PROCESS mode (flagd.sync.v1 stream, evaluated locally by
openfeature-flagd-core).

Driven by tests/openfeature_python_flagd_files.rs:

    python test_openfeature_flagd_files.py rpc|in-process PORT CASES_JSON

CASES_JSON holds cohortd's offline answers (tests/support/providers.rs):
for every flag and context, what get_<type>_details must return, asked with the
flag's type and with a wrong type. Every answer (value or the caller's default,
variant, reason, error code) and every flag's metadata must match. Then the
script prints READY-FOR-CHANGE; the driver rewrites the file and writes
`CHANGED AFTER_JSON`; the script waits for PROVIDER_CONFIGURATION_CHANGED naming
the changed flags and checks every answer again against AFTER_JSON (bounded
retry), prints OK and exits 0. Any difference exits 1 with a message.
"""

import json
import sys
import threading
import time

from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent

# Caller defaults, distinct from every served value where the type allows it.
DEFAULTS = {
    "boolean": False,
    "string": "caller-default",
    "integer": -7,
    "float": -7.5,
    "object": {"caller": "default"},
}


def fail(msg):
    sys.stderr.write(f"FAILED {msg}\n")
    sys.exit(1)


def context(c):
    attrs = {k: v for k, v in c.items() if k != "targetingKey"}
    return EvaluationContext(targeting_key=c.get("targetingKey"), attributes=attrs)


def ask(client, ty, key, ctx):
    return getattr(client, f"get_{ty}_details")(key, DEFAULTS[ty], ctx)


def code(d):
    return d.error_code.value if d.error_code else None


def mismatch(mode, key, ty, want, d, meta):
    """The first difference between the provider's answer `d` and `want`, or None."""
    value = DEFAULTS[ty] if want["callerDefault"] else want["value"]
    reason = str(d.reason)
    # RPC providers cache STATIC answers until a configuration_change names the
    # flag, and report cached ones as CACHED (flagd provider spec).
    if mode == "rpc" and want["reason"] == "STATIC" and reason == "CACHED":
        reason = "STATIC"
    got = (d.value, d.variant, reason, code(d))
    exp = (value, want["variant"], want["reason"], want["errorCode"])
    if got != exp or type(d.value) is not type(value) and ty != "float":
        return f"{key} as {ty}: got {got!r}, want {exp!r}"
    # The RPC provider (0.6.1) drops flag metadata: its _resolve builds the
    # details without it. rpc_metadata() checks what cohortd sends instead.
    if want["errorCode"] is None and (mode != "rpc" or d.flag_metadata):
        return metadata_mismatch(key, dict(d.flag_metadata or {}), meta)
    return None


def metadata_mismatch(key, got, want):
    """flagd's metadata exactly, plus only keys of cohortd's own (`cohortd*`)."""
    flagd_meta = {k: v for k, v in got.items() if not k.startswith("cohortd")}
    if flagd_meta != want:
        return f"{key} metadata: got {got!r}, want {want!r} (plus cohortd* keys)"
    return None


def rpc_metadata(port, cases):
    """RPC mode: each flag's metadata as cohortd sends it over flagd.evaluation.v2
    (with the provider's own generated stubs), for a context it resolves for."""
    import grpc
    from google.protobuf.json_format import MessageToDict
    from google.protobuf.struct_pb2 import Struct
    from openfeature.schemas.protobuf.flagd.evaluation.v2 import evaluation_pb2 as pb
    from openfeature.schemas.protobuf.flagd.evaluation.v2 import evaluation_pb2_grpc as pb_grpc

    methods = {
        "boolean": ("ResolveBoolean", pb.ResolveBooleanRequest),
        "string": ("ResolveString", pb.ResolveStringRequest),
        "integer": ("ResolveInt", pb.ResolveIntRequest),
        "float": ("ResolveFloat", pb.ResolveFloatRequest),
        "object": ("ResolveObject", pb.ResolveObjectRequest),
    }
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.ServiceStub(channel)
        for key, ty in sorted(cases["flags"].items()):
            answers = cases["answers"][key]
            i = next(i for i, a in enumerate(answers) if a["asType"]["errorCode"] is None)
            ctx = Struct()
            ctx.update(cases["contexts"][i])
            name, request = methods[ty]
            r = getattr(stub, name)(request(flag_key=key, context=ctx), timeout=5)
            got = MessageToDict(r.metadata)
            if "cohortdConfigVersion" not in got:
                return f"{key} metadata over RPC: no cohortdConfigVersion in {got!r}"
            msg = metadata_mismatch(key, got, cases["metadata"][key])
            if msg:
                return f"over RPC: {msg}"
    return None


def compare(mode, client, cases):
    """Every flag x context x (type, wrong type); returns (first difference, count)."""
    n = 0
    for i, c in enumerate(cases["contexts"]):
        ctx = context(c)
        for key, ty in sorted(cases["flags"].items()):
            want = cases["answers"][key][i]
            asks = [(ty, want["asType"])]
            # A targeting error comes before the type check, so asking with the
            # wrong type adds nothing, and over RPC each such call costs the
            # provider's retries (it retries UNKNOWN, flagd's status for GENERAL).
            if want["asType"]["errorCode"] != "GENERAL":
                asks.append((cases["wrongTypes"][key], want["asWrongType"]))
            for t, w in asks:
                d = ask(client, t, key, ctx)
                msg = mismatch(mode, key, t, w, d, cases["metadata"][key])
                if msg:
                    return f"context {c}: {msg}", n
                n += 1
    return None, n


def main():
    mode, port, cases_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)

    provider = FlagdProvider(
        resolver_type=ResolverType.RPC if mode == "rpc" else ResolverType.IN_PROCESS,
        host="127.0.0.1",
        port=port,
        deadline_ms=5000,
    )
    api.set_provider_and_wait(provider)
    client = api.get_client()

    # Registered after readiness: in-process providers also announce the first sync.
    lock = threading.Lock()
    changed_flags = []
    changed = threading.Event()

    def on_change(details):
        with lock:
            changed_flags.extend(details.flags_changed or [])
        changed.set()

    msg, n = compare(mode, client, cases)
    if msg:
        fail(msg)
    if n < 2 * len(cases["contexts"]) * (len(cases["flags"]) - 1):
        fail(f"compared only {n} answers")
    if mode == "rpc":
        msg = rpc_metadata(port, cases)
        if msg:
            fail(msg)
    d = client.get_string_details("no-such-flag", "fallback", context({"targetingKey": "u1"}))
    if (d.value, str(d.reason), code(d)) != ("fallback", "ERROR", "FLAG_NOT_FOUND"):
        fail(f"unknown flag: got {(d.value, str(d.reason), code(d))!r}")

    api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, on_change)
    print("READY-FOR-CHANGE", flush=True)
    line = sys.stdin.readline().split()
    if len(line) != 2 or line[0] != "CHANGED":
        fail(f"driver said {line!r}, want CHANGED PATH")
    with open(line[1], encoding="utf-8") as f:
        after = json.load(f)
    deadline = time.monotonic() + 30
    while True:
        changed.wait(timeout=max(0.0, deadline - time.monotonic()))
        with lock:
            seen = set(changed_flags)
        if {"banner", "new-checkout", "max-items", "retired"} <= seen:
            break
        if time.monotonic() > deadline:
            fail(f"PROVIDER_CONFIGURATION_CHANGED named {sorted(seen)!r} within 30 s, want the four changed flags")
        changed.clear()
    # The event and the new flag set come from one reload; a short bounded retry
    # covers a provider that fires the event before applying the new set.
    deadline = time.monotonic() + 10
    while True:
        msg, _ = compare(mode, client, after)
        if msg is None:
            break
        if time.monotonic() > deadline:
            fail(f"after the change: {msg}")
        time.sleep(0.1)

    api.shutdown()
    print(f"compared {n} answers before the change", file=sys.stderr)
    print("OK", flush=True)


if __name__ == "__main__":
    main()

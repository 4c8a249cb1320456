#!/usr/bin/env python3
"""Calls cohortd's own gRPC API (cohortd.v1.Assignment) from Python.

The client code is generated from proto/cohortd/v1/assignment.proto with
grpcio-tools when the script starts, into a temporary directory: nothing
generated is committed, and the stubs always match the proto next to them.

    pip install grpcio grpcio-tools protobuf
    python examples/python/cohortd_client.py --user u-7 region=US accountType=free
    python examples/python/cohortd_client.py watch [--count N]

Flags: --addr (default $COHORTD_ADDR or 127.0.0.1:8013; `unix:/path` for a Unix
domain socket), --experiment (default exp-checkout-flow-v3), --user (the unit id,
sent as userId and targetingKey), then any number of attr=value context pairs.
Over a Unix socket the channel sends `localhost` as its authority (see
channel_options): set the same option in your own grpc-core based clients.

Prints one line per result, as key=value pairs, so that scripts (and the
integration test tests/examples_python.rs) can read them:

    assign experiment=... unit=... variant=... enrolled=... reason=... config_version=... epoch=... salt_fingerprint=... value=<JSON>
    assign_all config_version=... count=N
    assign_all experiment=... variant=... enrolled=... reason=...   (one per experiment)
    explain experiment=... variant=... steps=N
    explain_step kind=... passed=... description=...                 (one per step)

`watch` follows the Watch stream instead (Ctrl-C stops it; --count N stops after
N events), one line per event:

    watch config_version=... initial=true
    watch config_version=... added=a,b changed=c removed=
"""

from __future__ import annotations

import argparse
import importlib
import importlib.resources
import json
import os
import sys
import tempfile
from pathlib import Path

import grpc
from google.protobuf import json_format, struct_pb2

REPO = Path(__file__).resolve().parents[2]


def generate_stubs(proto_root: Path, out_dir: Path):
    """Runs protoc (bundled in grpcio-tools) on the cohortd.v1 proto; returns the
    generated message and service modules."""
    from grpc_tools import protoc

    well_known = importlib.resources.files("grpc_tools") / "_proto"
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{proto_root}",
            f"-I{well_known}",
            f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            "cohortd/v1/assignment.proto",
        ]
    )
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")
    sys.path.insert(0, str(out_dir))
    pb2 = importlib.import_module("cohortd.v1.assignment_pb2")
    pb2_grpc = importlib.import_module("cohortd.v1.assignment_pb2_grpc")
    return pb2, pb2_grpc


def parse_context(user: str, pairs: list[str]) -> dict:
    """userId/targetingKey from --user plus attr=value pairs (true/false/numbers
    are typed, everything else is a string)."""
    ctx: dict = {"userId": user, "targetingKey": user}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise SystemExit(f"context pair {pair!r} is not attr=value")
        try:
            ctx[key] = json.loads(raw)
        except json.JSONDecodeError:
            ctx[key] = raw
    return ctx


def channel_options(addr: str) -> list:
    """For a Unix socket, send `localhost` as the HTTP/2 :authority. gRPC's C core
    otherwise sends the socket path, which cohortd's HTTP/2 stack rejects as a
    malformed authority (the call fails with RST_STREAM PROTOCOL_ERROR)."""
    if addr.startswith("unix:"):
        return [("grpc.default_authority", "localhost")]
    return []


def value_str(value) -> str:
    return json.dumps(json_format.MessageToDict(value), separators=(",", ":"))


def watch(argv: list[str]) -> int:
    """`watch`: prints every event of cohortd.v1.Assignment/Watch as it arrives
    (flushed at once, so a pipe or a test sees each reload when it happens)."""
    ap = argparse.ArgumentParser(prog="cohortd_client.py watch", description="Follow config reloads (Watch).")
    ap.add_argument("--addr", default=os.environ.get("COHORTD_ADDR", "127.0.0.1:8013"))
    ap.add_argument("--proto-root", type=Path, default=REPO / "proto")
    ap.add_argument("--count", type=int, default=0, help="stop after N events (default: follow until Ctrl-C)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cohortd-stubs-") as tmp:
        pb2, pb2_grpc = generate_stubs(args.proto_root, Path(tmp))
        with grpc.insecure_channel(args.addr, options=channel_options(args.addr)) as channel:
            stub = pb2_grpc.AssignmentStub(channel)
            seen = 0
            try:
                for ev in stub.Watch(pb2.WatchRequest()):
                    if ev.initial:
                        print(f"watch config_version={ev.config_version} initial=true", flush=True)
                    else:
                        print(
                            f"watch config_version={ev.config_version} added={','.join(ev.added)} "
                            f"changed={','.join(ev.changed)} removed={','.join(ev.removed)}",
                            flush=True,
                        )
                    seen += 1
                    if args.count and seen >= args.count:
                        break
            except KeyboardInterrupt:
                pass
    return 0


def main() -> int:
    if sys.argv[1:2] == ["watch"]:
        return watch(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--addr", default=os.environ.get("COHORTD_ADDR", "127.0.0.1:8013"))
    ap.add_argument("--experiment", default="exp-checkout-flow-v3")
    ap.add_argument("--user", default="u-7")
    ap.add_argument("--proto-root", type=Path, default=REPO / "proto")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds per call")
    ap.add_argument("context", nargs="*", metavar="attr=value")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="cohortd-stubs-") as tmp:
        pb2, pb2_grpc = generate_stubs(args.proto_root, Path(tmp))
        ctx = struct_pb2.Struct()
        ctx.update(parse_context(args.user, args.context))

        with grpc.insecure_channel(args.addr, options=channel_options(args.addr)) as channel:
            stub = pb2_grpc.AssignmentStub(channel)

            # One experiment. exposure=True: the user sees the variant now.
            a = stub.Assign(
                pb2.AssignRequest(experiment=args.experiment, context=ctx, exposure=True),
                timeout=args.timeout,
            )
            print(
                f"assign experiment={a.experiment} unit={args.user} variant={a.variant} "
                f"enrolled={str(a.enrolled).lower()} reason={pb2.Reason.Name(a.reason)} "
                f"config_version={a.config_version} epoch={a.epoch} "
                f"salt_fingerprint={a.salt_fingerprint} value={value_str(a.value)}"
            )

            # Every experiment in one round trip (no exposures: evaluating is not exposing).
            every = stub.AssignAll(pb2.AssignAllRequest(context=ctx), timeout=args.timeout)
            print(f"assign_all config_version={every.config_version} count={len(every.assignments)}")
            for x in every.assignments:
                print(
                    f"assign_all experiment={x.experiment} variant={x.variant} "
                    f"enrolled={str(x.enrolled).lower()} reason={pb2.Reason.Name(x.reason)}"
                )

            # Why: every decision step.
            e = stub.Explain(pb2.AssignRequest(experiment=args.experiment, context=ctx), timeout=args.timeout)
            print(f"explain experiment={e.assignment.experiment} variant={e.assignment.variant} steps={len(e.steps)}")
            for s in e.steps:
                print(f"explain_step kind={s.kind} passed={str(s.passed).lower()} description={s.description}")

            # Errors are gRPC statuses: an unknown experiment is NOT_FOUND.
            try:
                stub.Assign(pb2.AssignRequest(experiment="no-such-experiment", context=ctx), timeout=args.timeout)
                print("unknown_experiment status=OK")
            except grpc.RpcError as err:
                print(f"unknown_experiment status={err.code().name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

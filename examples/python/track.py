#!/usr/bin/env python3
"""Sends outcome events to cohortd (cohortd.v1.Assignment/Track) from Python.

The sidecar attaches the unit's assignments itself: send the same context as
for Assign, a metric the experiment config declares in `metrics`, a value and an
idempotency key. A retry with the same event_id is recorded once.

    pip install grpcio grpcio-tools protobuf
    python examples/python/track.py --user u-7 --metric checkout_completion_rate region=US accountType=free

Flags: --addr (default $COHORTD_ADDR or 127.0.0.1:8013), --user, --metric
(default checkout_completion_rate), --value (default: unset, which counts as 1),
--event-id (default: a fresh UUID), then attr=value context pairs.

Prints key=value lines (read by tests/examples_python.rs):

    track event_id=... duplicate=false assignments=experiment:variant,...
    track_retry event_id=... duplicate=true
    track_invalid status=INVALID_ARGUMENT
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc
from google.protobuf import struct_pb2, timestamp_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cohortd_client import REPO, channel_options, generate_stubs, parse_context  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--addr", default=os.environ.get("COHORTD_ADDR", "127.0.0.1:8013"))
    ap.add_argument("--user", default="u-7")
    ap.add_argument("--metric", default="checkout_completion_rate")
    ap.add_argument("--value", type=float, default=None)
    ap.add_argument("--event-id", default=None)
    ap.add_argument("--proto-root", type=Path, default=REPO / "proto")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds per call")
    ap.add_argument("context", nargs="*", metavar="attr=value")
    args = ap.parse_args()
    event_id = args.event_id or str(uuid.uuid4())

    with tempfile.TemporaryDirectory(prefix="cohortd-stubs-") as tmp:
        pb2, pb2_grpc = generate_stubs(args.proto_root, Path(tmp))
        ctx = struct_pb2.Struct()
        ctx.update(parse_context(args.user, args.context))
        when = timestamp_pb2.Timestamp()
        when.FromNanoseconds(time.time_ns())
        event = pb2.OutcomeEvent(context=ctx, metric=args.metric, event_id=event_id, timestamp=when)
        if args.value is not None:
            event.value = args.value  # unset means 1: a conversion

        with grpc.insecure_channel(args.addr, options=channel_options(args.addr)) as channel:
            stub = pb2_grpc.AssignmentStub(channel)
            r = stub.Track(pb2.TrackRequest(events=[event]), timeout=args.timeout)
            for res in r.results:
                pairs = ",".join(f"{a.experiment}:{a.variant}" for a in res.assignments)
                print(f"track event_id={res.event_id} duplicate={str(res.duplicate).lower()} assignments={pairs}")

            # A retry (say, after a timeout) with the same event_id is not counted twice.
            again = stub.Track(pb2.TrackRequest(events=[event]), timeout=args.timeout)
            res = again.results[0]
            print(f"track_retry event_id={res.event_id} duplicate={str(res.duplicate).lower()}")

            # A batch with a bad event is refused whole: nothing of it is recorded.
            bad = pb2.OutcomeEvent(context=ctx, metric="no_such_metric", event_id=str(uuid.uuid4()))
            try:
                stub.Track(pb2.TrackRequest(events=[event, bad]), timeout=args.timeout)
                print("track_invalid status=OK")
            except grpc.RpcError as err:
                print(f"track_invalid status={err.code().name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

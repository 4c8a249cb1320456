#!/usr/bin/env python3
"""A real TLS client for cohortd's listeners (tests/security_tls_python.rs).

One check per run, over a fresh connection each attempt:

    tls_client.py grpc  --addr 127.0.0.1:PORT --ca CA.pem [--cert C --key K] --expect serving|refused [--wait SECS]
    tls_client.py https --addr 127.0.0.1:PORT --ca CA.pem [--cert C --key K] --expect serving|refused [--wait SECS]

`grpc` calls grpc.health.v1.Health/Check through grpcio's own TLS stack
(BoringSSL), `https` GETs /healthz with Python's ssl module. Both verify the
server's certificate against --ca for the name `localhost`, and present the
client certificate when --cert/--key are given. `serving` means the call
answered SERVING / 200; `refused` means the listener accepts TCP but the handshake or the call
failed.
With --wait, attempts repeat (every 100 ms) until the expectation holds or the
time is up: that is how a certificate rotation is observed without a restart.

Prints `OK <what happened>` and exits 0 when the expectation held, else prints
what happened on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import ssl
import sys
import time

import grpc

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
SERVING = 1


def read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def health_status(data: bytes) -> int:
    """`status` (field 1, varint) of a HealthCheckResponse; 0 (UNKNOWN) if absent.
    Decoded by hand so the test needs no generated code for a foreign proto."""
    i, status = 0, 0
    while i < len(data):
        tag, i = read_varint(data, i)
        if tag & 7 != 0:
            raise ValueError(f"unexpected wire type in HealthCheckResponse: {data!r}")
        value, i = read_varint(data, i)
        if tag >> 3 == 1:
            status = value
    return status


def read(path: str | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


def grpc_attempt(args) -> tuple[bool, str]:
    creds = grpc.ssl_channel_credentials(
        root_certificates=read(args.ca),
        private_key=read(args.key),
        certificate_chain=read(args.cert),
    )
    options = [
        # The certificate names localhost; the address is an IP.
        ("grpc.ssl_target_name_override", "localhost"),
        # A private subchannel per channel: a failed handshake of an earlier
        # attempt must not be reused (or backed off) by the next one.
        ("grpc.use_local_subchannel_pool", 1),
    ]
    with grpc.secure_channel(args.addr, creds, options=options) as channel:
        check = channel.unary_unary(
            HEALTH_CHECK,
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        try:
            # An empty HealthCheckRequest (service "") is zero bytes.
            status = health_status(check(b"", timeout=5))
        except grpc.RpcError as e:
            return False, f"grpc {e.code().name}: {e.details()}"
    return status == SERVING, f"grpc health status {status}"


def https_attempt(args) -> tuple[bool, str]:
    ctx = ssl.create_default_context(cafile=args.ca)
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    _, port = args.addr.rsplit(":", 1)
    # `localhost`: the name on the certificate, checked by the ssl module.
    conn = http.client.HTTPSConnection("localhost", int(port), context=ctx, timeout=5)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace").strip()
    except (OSError, http.client.HTTPException) as e:
        return False, f"https {type(e).__name__}: {e}"
    finally:
        conn.close()
    return resp.status == 200, f"https {resp.status} {body}"


def listening(addr: str) -> bool:
    """Whether `addr` accepts TCP: a `refused` result must come from TLS or the
    call, not from a listener that is gone."""
    host, port = addr.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        return True
    except OSError:
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["grpc", "https"])
    ap.add_argument("--addr", required=True)
    ap.add_argument("--ca", required=True, help="PEM of the CA the server certificate must chain to")
    ap.add_argument("--cert", help="client certificate chain (PEM), for mutual TLS")
    ap.add_argument("--key", help="client private key (PEM)")
    ap.add_argument("--expect", choices=["serving", "refused"], required=True)
    ap.add_argument("--wait", type=float, default=0.0, help="seconds to keep trying")
    args = ap.parse_args()
    if (args.cert is None) != (args.key is None):
        ap.error("--cert and --key go together")

    attempt = grpc_attempt if args.kind == "grpc" else https_attempt
    want = args.expect == "serving"
    deadline = time.monotonic() + args.wait
    while True:
        ok, what = attempt(args)
        if not ok and not listening(args.addr):
            # Neither served nor refused by TLS: fails either expectation.
            print(f"nothing listens on {args.addr}: {what}", file=sys.stderr)
            return 1
        if ok == want:
            print(f"OK {what}", flush=True)
            return 0
        if time.monotonic() >= deadline:
            print(f"expected {args.expect}, got: {what}", file=sys.stderr)
            return 1
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Measures cohortd's memory footprint, the numbers the Kubernetes resource
requests and limits in deploy/kubernetes/base/deployment.yaml come from.

    cargo build --release
    .venv/bin/python deploy/measure_footprint.py --bin target/release/cohortd

For each config set (examples/configs alone, and examples/configs plus N
generated experiments) it starts `cohortd serve` on free loopback ports, waits
for /readyz, reads VmRSS and VmHWM from /proc/PID/status, sends a bounded burst
of Assign and AssignAll calls through the Python client stubs, and reads them
again. Linux only (procfs). Nothing here is a pass/fail threshold.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples" / "python"))

import grpc  # noqa: E402
from google.protobuf import struct_pb2  # noqa: E402

from cohortd_client import generate_stubs  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def generated_experiments(n: int) -> str:
    """n running experiments: two or three variants, some with traffic caps and
    targeting rules, so the compiled snapshot is representative."""
    lines = ["experiments:"]
    for i in range(n):
        lines += [
            f"  - key: bulk-{i:05d}",
            "    status: running",
            f"    trafficAllocation: {0.1 + (i % 9) / 10:.1f}",
            "    variants: [control, treatment" + (", treatment-b]" if i % 3 == 0 else "]"),
        ]
        if i % 4 == 0:
            lines += [
                "    targeting:",
                "      rules:",
                f"        - {{attribute: region, op: in, value: [US, CA, DE{i % 7}]}}",
            ]
    return "\n".join(lines) + "\n"


def status_kib(pid: int) -> dict:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0])
    return out


def measure(binary: Path, config_dir: Path, requests: int, pb2, pb2_grpc) -> dict:
    grpc_port, admin_port = free_port(), free_port()
    proc = subprocess.Popen(
        [str(binary), "serve", "--config-dir", str(config_dir), "--listen", f"127.0.0.1:{grpc_port}",
         "--admin-listen", f"127.0.0.1:{admin_port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"COHORTD_LOG": "warn", "PATH": "/usr/bin:/bin"},
    )
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=2) as r:
                    ready = json.loads(r.read())
                    break
            except OSError:
                time.sleep(0.05)
        if ready is None:
            raise SystemExit("cohortd did not become ready within 60 s")
        time.sleep(0.5)
        idle = status_kib(proc.pid)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
            stub = pb2_grpc.AssignmentStub(ch)
            for i in range(requests):
                ctx = struct_pb2.Struct()
                ctx.update({"userId": f"u-{i}", "targetingKey": f"u-{i}", "region": "US", "accountType": "free"})
                stub.Assign(pb2.AssignRequest(experiment="exp-checkout-flow-v3", context=ctx), timeout=5)
                if i % 10 == 0:
                    stub.AssignAll(pb2.AssignAllRequest(context=ctx), timeout=5)
        loaded = status_kib(proc.pid)
        return {"experiments": ready.get("experiments"), "idle": idle, "after": loaded}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", type=Path, default=REPO / "target" / "release" / "cohortd")
    ap.add_argument("--experiments", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="cohortd-footprint-") as tmp:
        tmp = Path(tmp)
        (tmp / "stubs").mkdir()
        pb2, pb2_grpc = generate_stubs(REPO / "proto", tmp / "stubs")
        small = REPO / "examples" / "configs"
        big = tmp / "big"
        shutil.copytree(small, big)
        (big / "bulk.yaml").write_text(generated_experiments(args.experiments))
        print(f"binary: {args.bin}; {args.requests} Assign + {args.requests // 10} AssignAll calls per run")
        print("| config | experiments | VmRSS idle | VmRSS after calls | VmHWM (peak) |")
        print("|---|---|---|---|---|")
        for name, d in (("examples/configs", small), (f"examples + {args.experiments} generated", big)):
            r = measure(args.bin, d, args.requests, pb2, pb2_grpc)
            print(
                f"| {name} | {r['experiments']} | {r['idle']['VmRSS'] / 1024:.1f} MiB | "
                f"{r['after']['VmRSS'] / 1024:.1f} MiB | {r['after']['VmHWM'] / 1024:.1f} MiB |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

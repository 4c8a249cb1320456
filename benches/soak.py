"""Bounded soak of the real binary (issue 15): mixed calls, reloads, stream and
connection churn, then checks.

Runs `cohortd serve` on a kubelet-style config volume. For SECS seconds:
  - CLIENTS threads call Assign, AssignAll and flagd ResolveInt in turn, each on
    its own connection, replaced every CHURN calls (connection churn);
  - one thread opens Watch and flagd EventStream streams, reads the first event
    and closes them (stream churn);
  - one thread reloads every 200 ms, alternating an atomic `..data` swap of
    soak.json and a plain in-place rewrite of plain.json.
Each config carries its generation as the value of experiments `soak` (atomic)
and `plain` (plain writes), so every client checks that the values it sees never
go backwards. Asserts zero failed calls, no backwards step, and the server's RSS
under RSS_MB at the end; prints a summary line.

    python benches/soak.py path/to/cohortd            # SECS=60 CLIENTS=4
"""

import importlib.resources
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import grpc
from grpc_tools import protoc

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SECS = float(os.environ.get("SECS", "60"))
CLIENTS = int(os.environ.get("CLIENTS", "4"))
CHURN = int(os.environ.get("CHURN", "50"))
RSS_MB = int(os.environ.get("RSS_MB", "256"))


def stubs(out):
    os.makedirs(out)
    include = str(importlib.resources.files("grpc_tools") / "_proto")
    for rel in ["cohortd/v1/assignment.proto", "flagd/evaluation/v1/evaluation.proto"]:
        rc = protoc.main(["protoc", f"-I{ROOT}/proto", f"-I{include}",
                          f"--python_out={out}", f"--grpc_python_out={out}", rel])
        if rc != 0:
            sys.exit(f"protoc failed on {rel}")
    sys.path.insert(0, out)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def experiment(key, gen):
    return {"key": key, "status": "running", "variants": [{"key": "g", "value": gen}]}


class Volume:
    """A config directory as the kubelet writes a ConfigMap, plus one plain file."""

    def __init__(self, path):
        self.path = path
        self.gen = 0
        self.swap(0)
        self.plain(0)

    def swap(self, gen):
        d = os.path.join(self.path, f"..gen_{gen}")
        os.mkdir(d)
        with open(os.path.join(d, "soak.json"), "w") as f:
            json.dump(experiment("soak", gen), f)
        tmp = os.path.join(self.path, "..data_tmp")
        os.symlink(f"..gen_{gen}", tmp)
        old = os.path.realpath(os.path.join(self.path, "..data")) if gen else None
        os.rename(tmp, os.path.join(self.path, "..data"))
        if gen == 0:
            os.symlink("..data/soak.json", os.path.join(self.path, "soak.json"))
        if old:
            shutil.rmtree(old)

    def plain(self, gen):
        with open(os.path.join(self.path, "plain.json"), "w") as f:
            json.dump(experiment("plain", gen), f)


def main():
    binary = sys.argv[1]
    work = tempfile.mkdtemp(prefix="cohortd-soak-")
    stubs(os.path.join(work, "gen"))
    import cohortd.v1.assignment_pb2 as pb
    import cohortd.v1.assignment_pb2_grpc as pbg
    import flagd.evaluation.v1.evaluation_pb2 as fpb
    import flagd.evaluation.v1.evaluation_pb2_grpc as fpbg
    from google.protobuf import struct_pb2

    os.mkdir(os.path.join(work, "config"))
    vol = Volume(os.path.join(work, "config"))
    grpc_addr = f"127.0.0.1:{free_port()}"
    srv = subprocess.Popen(
        [binary, "serve", "--config-dir", vol.path, "--listen", grpc_addr,
         "--admin-listen", f"127.0.0.1:{free_port()}", "--settle", "100ms"],
        env={**os.environ, "COHORTD_LOG": "warn"}, stdout=subprocess.DEVNULL)
    stop = threading.Event()
    lock = threading.Lock()
    stats = {"top": {"soak": -1, "plain": -1}, "calls": 0, "failed": [], "backwards": [], "streams": 0, "reloads": 0, "conns": 0}

    def fail(kind, what):
        with lock:
            if len(stats[kind]) < 20:
                stats[kind].append(what)
            else:
                stats[kind].append(None)

    def client(n):
        seen = {"soak": -1, "plain": -1}
        calls = 0
        while not stop.is_set():
            with grpc.insecure_channel(grpc_addr) as ch:
                with lock:
                    stats["conns"] += 1
                a, f = pbg.AssignmentStub(ch), fpbg.ServiceStub(ch)
                ctx = struct_pb2.Struct()
                for i in range(CHURN):
                    if stop.is_set():
                        break
                    ctx.update({"userId": f"u{n}-{i}"})
                    try:
                        kind = (calls + i) % 3
                        if kind == 0:
                            vals = {"soak": a.Assign(pb.AssignRequest(experiment="soak", context=ctx), timeout=5).value.number_value}
                        elif kind == 1:
                            r = a.AssignAll(pb.AssignAllRequest(context=ctx), timeout=5)
                            vals = {x.experiment: x.value.number_value for x in r.assignments}
                        else:
                            vals = {"plain": f.ResolveInt(fpb.ResolveIntRequest(flag_key="plain", context=ctx), timeout=5).value}
                    except grpc.RpcError as e:
                        fail("failed", f"{e.code()}: {e.details()}")
                        continue
                    for k, v in vals.items():
                        if k in seen:
                            if v < seen[k]:
                                fail("backwards", f"client {n}: {k} {seen[k]} -> {v}")
                            seen[k] = max(seen[k], v)
                calls += CHURN
                with lock:
                    for k, v in seen.items():
                        stats["top"][k] = max(stats["top"][k], v)
                    stats["calls"] += i + 1

    def streams():
        while not stop.is_set():
            with grpc.insecure_channel(grpc_addr) as ch:
                try:
                    for call in [pbg.AssignmentStub(ch).Watch(pb.WatchRequest(), timeout=5),
                                 fpbg.ServiceStub(ch).EventStream(fpb.EventStreamRequest(), timeout=5)]:
                        next(call)
                        call.cancel()
                        with lock:
                            stats["streams"] += 1
                except grpc.RpcError as e:
                    fail("failed", f"stream {e.code()}: {e.details()}")

    def reloads():
        gen = 0
        while not stop.is_set():
            time.sleep(0.2)
            gen += 1
            (vol.swap if gen % 2 else vol.plain)(gen)
            with lock:
                stats["reloads"] += 1

    try:
        grpc.channel_ready_future(grpc.insecure_channel(grpc_addr)).result(timeout=60)
        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        threads += [threading.Thread(target=streams), threading.Thread(target=reloads)]
        for t in threads:
            t.start()
        time.sleep(SECS)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        with open(f"/proc/{srv.pid}/status") as f:
            rss_kb = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        alive = srv.poll() is None
    finally:
        srv.terminate()
        srv.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(f"soak: {SECS:.0f} s, {CLIENTS} clients, {stats['calls']} calls, {stats['conns']} connections, "
          f"{stats['streams']} streams, {stats['reloads']} reloads, {len(stats['failed'])} failed, "
          f"{len(stats['backwards'])} backwards, generations seen up to "
          f"soak={stats['top']['soak']:.0f} plain={stats['top']['plain']:.0f}, RSS {rss_kb // 1024} MB (bound {RSS_MB} MB)")
    problems = [p for p in stats["failed"] + stats["backwards"] if p]
    for p in problems[:20]:
        print("  " + p)
    if not alive or stats["failed"] or stats["backwards"] or rss_kb > RSS_MB * 1024 or min(stats["top"].values()) < 1:
        sys.exit("soak: FAILED" + ("" if alive else " (the server exited)"))


if __name__ == "__main__":
    main()

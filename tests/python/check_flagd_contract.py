"""Checks that cohortd's flagd protos match the wire contract the installed flagd
provider was generated from: same packages, services, methods, messages, field
names, numbers, types, labels, oneofs and proto3-optional markers.

    python check_flagd_contract.py PROTO_ROOT

Compiles PROTO_ROOT/flagd/evaluation/v{1,2}/evaluation.proto and flagd/sync/v1/sync.proto with grpcio-tools
and compares each descriptor with the provider's generated one. Prints every
difference and exits 1 if there is any, else prints OK.
"""

import importlib
import importlib.resources
import os
import sys
import tempfile

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

PROVIDER_MODULES = {
    "flagd/evaluation/v1/evaluation.proto": "openfeature.schemas.protobuf.flagd.evaluation.v1.evaluation_pb2",
    "flagd/evaluation/v2/evaluation.proto": "openfeature.schemas.protobuf.flagd.evaluation.v2.evaluation_pb2",
    "flagd/sync/v1/sync.proto": "openfeature.schemas.protobuf.flagd.sync.v1.sync_pb2",
}


def shape_message(m, prefix=""):
    """Every wire-relevant fact about a message, as sorted tuples."""
    out = []
    name = prefix + m.name
    for f in m.field:
        oneof = m.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else None
        out.append(("field", name, f.name, f.number, f.label, f.type, f.type_name, oneof, f.proto3_optional))
    for n in m.nested_type:
        out.append(("nested", name, n.name, n.options.map_entry))
        out.extend(shape_message(n, name + "."))
    for e in m.enum_type:
        out.append(("enum", name, e.name, tuple((v.name, v.number) for v in e.value)))
    return out


def shape(fd):
    out = [("package", fd.package), ("deps", tuple(sorted(fd.dependency)))]
    for m in fd.message_type:
        out.append(("message", m.name))
        out.extend(shape_message(m))
    for e in fd.enum_type:
        out.append(("enum", e.name, tuple((v.name, v.number) for v in e.value)))
    for s in fd.service:
        for meth in s.method:
            out.append(("rpc", s.name, meth.name, meth.input_type, meth.output_type,
                        meth.client_streaming, meth.server_streaming))
    return sorted(out, key=repr)


def main():
    root = sys.argv[1]
    include = str(importlib.resources.files("grpc_tools") / "_proto")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for rel, module in PROVIDER_MODULES.items():
            out = os.path.join(tmp, "set.pb")
            rc = protoc.main(["protoc", f"-I{root}", f"-I{include}", f"--descriptor_set_out={out}", rel])
            if rc != 0:
                print(f"protoc failed on {rel}", file=sys.stderr)
                return 1
            ours_set = descriptor_pb2.FileDescriptorSet()
            with open(out, "rb") as f:
                ours_set.ParseFromString(f.read())
            ours = ours_set.file[0]
            theirs = descriptor_pb2.FileDescriptorProto()
            importlib.import_module(module).DESCRIPTOR.CopyToProto(theirs)
            a, b = set(shape(ours)), set(shape(theirs))
            for x in sorted(a - b, key=repr):
                print(f"{rel}: only in cohortd: {x}", file=sys.stderr)
                failures += 1
            for x in sorted(b - a, key=repr):
                print(f"{rel}: only in the provider: {x}", file=sys.stderr)
                failures += 1
    if failures:
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

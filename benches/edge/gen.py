"""Writes the same N experiments for cohortd and for Unleash Edge (offline mode).

Each experiment is shaped like examples/configs/checkout.json: 25% traffic, three
equal variants with string values, hashed on userId, targeting on region
(include region:US). Edge gets the equivalent feature: a flexibleRollout strategy
at 25% on userId with a `region IN [US]` constraint and three variants of weight
333/333/334 (Unleash splits variants in 1/1000ths) with the same string payloads.
    python3 benches/edge/gen.py N OUT_DIR   -> OUT_DIR/cohortd/exps.json, OUT_DIR/edge-features.json
"""
import json
import os
import sys

n, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(os.path.join(out, "cohortd"), exist_ok=True)
variants = ["control", "variant-a", "variant-b"]
exps, feats = [], []
for i in range(n):
    key = f"exp-{i:03d}"
    exps.append({
        "key": key,
        "status": "running",
        "trafficAllocation": 0.25,
        "variants": [{"key": v, "value": f"{v}-{i}"} for v in variants],
        "assignment": {"hashKey": "userId", "salt": key},
        "targeting": {"include": ["region:US"]},
    })
    feats.append({
        "name": key,
        "type": "experiment",
        "enabled": True,
        "project": "default",
        "strategies": [{
            "name": "flexibleRollout",
            "parameters": {"rollout": "25", "stickiness": "userId", "groupId": key},
            "constraints": [{"contextName": "region", "operator": "IN", "values": ["US"],
                             "inverted": False, "caseInsensitive": False}],
        }],
        "variants": [{"name": v, "weight": w, "weightType": "variable", "stickiness": "userId",
                      "payload": {"type": "string", "value": f"{v}-{i}"}}
                     for v, w in zip(variants, [333, 333, 334])],
    })
with open(os.path.join(out, "cohortd", "exps.json"), "w") as f:
    json.dump({"experiments": exps}, f)
with open(os.path.join(out, "edge-features.json"), "w") as f:
    json.dump({"version": 2, "features": feats}, f)

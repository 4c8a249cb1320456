"""Evaluates a flagd flag file with the Python flagd provider's own in-process
evaluator (PyPI openfeature-flagd-core, pinned in requirements.txt), for the
differential test tests/flagd_format_differential.rs.

Usage: flagd_core_eval.py FLAGS.json < contexts.jsonl > results.jsonl
Each input line: {"targetingKey": str|null (optional), ...attributes}.
Each output line: {flag_key: {"value", "variant", "reason"} | {"error": type}}.
The caller's default is reported as value null.
"""

import json
import sys

from openfeature.evaluation_context import EvaluationContext
from openfeature.contrib.tools.flagd.core import FlagdCore


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    core = FlagdCore()
    core.set_flags(text)
    keys = list(json.loads(text)["flags"].keys())
    for line in sys.stdin:
        attrs = json.loads(line)
        tk = attrs.pop("targetingKey", None)
        ctx = EvaluationContext(targeting_key=tk, attributes=attrs)
        out = {}
        for key in keys:
            try:
                # flag_type None: no type check, exactly the evaluation.
                r = core._resolve(key, None, ctx, None)
                reason = r.reason.value if hasattr(r.reason, "value") else str(r.reason)
                out[key] = {"value": r.value, "variant": r.variant, "reason": reason}
            except Exception as e:  # noqa: BLE001 - the error type is the datum
                out[key] = {"error": type(e).__name__}
        sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()

"""The real OpenFeature Python SDK with the OFREP provider
(openfeature-provider-ofrep) against cohortd's OFREP listener.

Driven by tests/openfeature_ofrep.rs, which starts the server, computes the
expected variants with cohortd's engine and passes them as JSON:

    python test_openfeature_ofrep.py PORT CONFIG_VERSION EXPECTATIONS_JSON

After the static checks the script prints READY-FOR-CHANGE; the driver installs
a config in which `kill-switch` is stopped and writes CHANGED; the script then
checks that the new value is served. (This provider evaluates every call
remotely, without a cache, so the next evaluation sees the change.) It prints OK
and exits 0 when everything held; any failed check exits non-zero.
"""

import json
import sys

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode


def check(what, got, want):
    if got != want:
        sys.stderr.write(f"FAILED {what}: got {got!r}, want {want!r}\n")
        sys.exit(1)


def details(d):
    return (d.value, d.variant, str(d.reason), d.error_code)


def main():
    port = int(sys.argv[1])
    version = sys.argv[2]
    exp = json.loads(sys.argv[3])

    api.set_provider(OFREPProvider(base_url=f"http://127.0.0.1:{port}", timeout=5.0))
    client = api.get_client()

    def user(key, **attrs):
        return EvaluationContext(targeting_key=key, attributes=attrs)

    d = client.get_boolean_details("kill-switch", False)
    check("kill-switch", details(d), (True, "on", "STATIC", None))
    check("metadata configVersion", d.flag_metadata.get("configVersion"), version)
    check("metadata experimentStatus", d.flag_metadata.get("experimentStatus"), "running")

    check(
        "upload-limit enrolled",
        details(client.get_integer_details("upload-limit-mb", 0, user(exp["rollout_in"]))),
        (250, "new", "SPLIT", None),
    )
    d = client.get_integer_details("upload-limit-mb", 0, user(exp["rollout_out"]))
    check("upload-limit outside", details(d), (100, "old", "DEFAULT", None))
    check("metadata enrolled", d.flag_metadata.get("enrolled"), False)

    values = {"en": "hello", "fr": "bonjour", "low": 0.9, "high": 1.25}
    for unit, want in exp["greeting"].items():
        check(
            f"greeting {unit}",
            details(client.get_string_details("greeting", "x", user(unit))),
            (values[want], want, "SPLIT", None),
        )
    for unit, want in exp["price-multiplier"].items():
        check(
            f"price-multiplier {unit}",
            details(client.get_float_details("price-multiplier", 1.0, user(unit))),
            (values[want], want, "SPLIT", None),
        )
    objects = {
        "one-page": {"steps": 1, "express": True},
        "multi-page": {"steps": 3, "express": False},
    }
    for unit, want in exp["checkout-config"].items():
        check(
            f"checkout-config {unit}",
            details(client.get_object_details("checkout-config", {}, user(unit))),
            (objects[want], want, "SPLIT", None),
        )

    check("tour", details(client.get_string_details("tour", "x")), ("short", "short", "STATIC", None))
    check(
        "old-test",
        details(client.get_string_details("old-test", "x", user("u1"))),
        ("control", "control", "DISABLED", None),
    )
    check(
        "beta-only miss",
        details(client.get_string_details("beta-only", "x", user("u1", plan="free"))),
        ("off", "off", "DEFAULT", None),
    )

    # Errors give the caller's default with the OFREP error code.
    d = client.get_string_details("no-such-flag", "fallback", user("u1"))
    check("not found", (d.value, d.error_code, str(d.reason)), ("fallback", ErrorCode.FLAG_NOT_FOUND, "ERROR"))
    d = client.get_string_details("greeting", "fallback")
    check("missing targeting key", (d.value, d.error_code), ("fallback", ErrorCode.TARGETING_KEY_MISSING))
    d = client.get_string_details("greeting", "fallback", user("u1", extra="x" * 5000))
    check("invalid context", (d.value, d.error_code), ("fallback", ErrorCode.INVALID_CONTEXT))
    # OFREP requests no type: the provider checks it, and a mismatch is the default.
    d = client.get_boolean_details("greeting", False, user("u1"))
    check("type mismatch", (d.value, d.error_code), (False, ErrorCode.TYPE_MISMATCH))

    print("READY-FOR-CHANGE", flush=True)
    line = sys.stdin.readline().strip()
    check("driver reply", line, "CHANGED")
    d = client.get_boolean_details("kill-switch", True)
    check("kill-switch after stop", details(d), (False, "off", "DISABLED", None))
    check("new configVersion", d.flag_metadata.get("configVersion") != version, True)

    api.shutdown()
    print("OK", flush=True)


if __name__ == "__main__":
    main()

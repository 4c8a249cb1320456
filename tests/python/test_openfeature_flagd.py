"""The real OpenFeature Python SDK with the flagd provider (RPC resolver) against
cohortd's flagd protocol.

Driven by tests/openfeature_python.rs, which starts the server, computes the
expected variants with cohortd's engine and passes them as JSON:

    python test_openfeature_flagd.py PORT EXPECTATIONS_JSON

Protocol with the driver over stdout/stdin: after the static checks the script
prints READY-FOR-CHANGE; the driver installs a config in which `kill-switch` is
stopped and writes CHANGED; the script then waits for the provider's
PROVIDER_CONFIGURATION_CHANGED event and checks the new value. It prints OK and
exits 0 when everything held; any failed check exits non-zero with a message.
"""

import json
import sys
import threading

from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent
from openfeature.exception import ErrorCode


def check(what, got, want):
    if got != want:
        sys.stderr.write(f"FAILED {what}: got {got!r}, want {want!r}\n")
        sys.exit(1)


def details(d):
    return (d.value, d.variant, str(d.reason), d.error_code)


def main():
    port = int(sys.argv[1])
    exp = json.loads(sys.argv[2])

    changed = threading.Event()
    changed_flags = []

    def on_change(event_details):
        changed_flags.extend(event_details.flags_changed or [])
        changed.set()

    api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, on_change)
    provider = FlagdProvider(
        resolver_type=ResolverType.RPC,
        host="127.0.0.1",
        port=port,
        deadline_ms=5000,
    )
    api.set_provider_and_wait(provider)
    client = api.get_client()

    def user(key, **attrs):
        return EvaluationContext(targeting_key=key, attributes=attrs)

    # Boolean kill switch: STATIC for everyone, no targeting key needed.
    check(
        "kill-switch",
        details(client.get_boolean_details("kill-switch", False)),
        (True, "on", "STATIC", None),
    )

    # Integer rollout: enrolled users get 250 (SPLIT), others the default 100.
    check(
        "upload-limit enrolled",
        details(client.get_integer_details("upload-limit-mb", 0, user(exp["rollout_in"]))),
        (250, "new", "SPLIT", None),
    )
    check(
        "upload-limit outside",
        details(client.get_integer_details("upload-limit-mb", 0, user(exp["rollout_out"]))),
        (100, "old", "DEFAULT", None),
    )

    # String, float and object splits: the engine's variant for each user.
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

    # A declared winner is STATIC; a stopped experiment serves its default, DISABLED.
    check(
        "tour",
        details(client.get_string_details("tour", "x")),
        ("short", "short", "STATIC", None),
    )
    check(
        "old-test",
        details(client.get_string_details("old-test", "x", user("u1"))),
        ("control", "control", "DISABLED", None),
    )
    check(
        "beta-only miss",
        details(client.get_string_details("beta-only", "x", user("u1"))),
        ("off", "off", "DEFAULT", None),
    )

    # Errors give the caller's default with the provider's error code.
    d = client.get_string_details("no-such-flag", "fallback", user("u1"))
    check("not found", (d.value, d.error_code, str(d.reason)), ("fallback", ErrorCode.FLAG_NOT_FOUND, "ERROR"))
    d = client.get_boolean_details("greeting", False, user("u1"))
    check("type mismatch", (d.value, d.error_code), (False, ErrorCode.TYPE_MISMATCH))
    d = client.get_integer_details("price-multiplier", 7, user("u1"))
    check("float as int", (d.value, d.error_code), (7, ErrorCode.TYPE_MISMATCH))
    # No status code means TARGETING_KEY_MISSING in flagd's protocol: GENERAL.
    d = client.get_string_details("greeting", "fallback")
    check("missing targeting key", (d.value, d.error_code), ("fallback", ErrorCode.GENERAL))

    # Configuration change: the provider must see it and drop its cached
    # (STATIC) kill-switch value.
    print("READY-FOR-CHANGE", flush=True)
    line = sys.stdin.readline().strip()
    check("driver reply", line, "CHANGED")
    if not changed.wait(timeout=20):
        sys.stderr.write("FAILED: no PROVIDER_CONFIGURATION_CHANGED within 20 s\n")
        sys.exit(1)
    check("changed flags include kill-switch", "kill-switch" in changed_flags, True)
    check(
        "kill-switch after stop",
        details(client.get_boolean_details("kill-switch", True)),
        (False, "off", "DISABLED", None),
    )

    api.shutdown()
    print("OK", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""An independent implementation of cohortd's bucketing algorithm (cohortd/v1),
written from the guide docs/algorithm.md, in pure Python with no
dependencies: its own SeaHash and math.log.

Usage: bucketing_reference.py tests/vectors/bucketing.json

It recomputes every committed test vector and exits non-zero on any mismatch. The
Rust test `engine_vectors::python_reference_reproduces_committed_vectors` runs it,
which shows the README describes the algorithm completely.

math.log is the platform's libm, which may differ from the libm crate in the last
bit; the checks therefore compare variant choices, never raw scores.
"""

import json
import math
import struct
import sys

MASK = (1 << 64) - 1
P = 0x6EED0E9DA4D94A4F
DEFAULT_SEEDS = (0x16F11FE89B0D677C, 0xB480A793D8E6C86C, 0x6FE2E5AAF078EBC9, 0x14F994A4C5259381)
SLOTS = 1 << 32


def diffuse(x):
    x = (x * P) & MASK
    x ^= (x >> 32) >> (x >> 60)
    return (x * P) & MASK


def seahash(data, seeds=DEFAULT_SEEDS):
    """SeaHash: zero-pad to a multiple of 8 bytes, read little-endian u64 words,
    word i goes into lane i mod 4 (lane = diffuse(lane ^ word)); the result is
    diffuse(a ^ b ^ c ^ d ^ byte_length)."""
    lanes = list(seeds)
    padded = data + b"\0" * (-len(data) % 8)
    for i in range(0, len(padded), 8):
        (word,) = struct.unpack("<Q", padded[i : i + 8])
        lane = (i // 8) % 4
        lanes[lane] = diffuse(lanes[lane] ^ word)
    a, b, c, d = lanes
    return diffuse(a ^ b ^ c ^ d ^ len(data))


def u64le(n):
    return struct.pack("<Q", n)


def derive(purpose, salt, extra=""):
    """The four seeds of a draw: seed i = seahash("cohortd/v1" 0x00 purpose 0x00
    u64le(i) u64le(len(salt)) salt u64le(len(extra)) extra), lengths in bytes."""
    salt_b, extra_b = salt.encode(), extra.encode()
    return tuple(
        seahash(
            b"cohortd/v1\0"
            + purpose.encode()
            + b"\0"
            + u64le(i)
            + u64le(len(salt_b))
            + salt_b
            + u64le(len(extra_b))
            + extra_b
        )
        for i in range(4)
    )


def draw(purpose, salt, extra, unit):
    return seahash(unit.encode(), derive(purpose, salt, extra))


def slot(d):
    return d >> 32


def threshold(fraction):
    if fraction != fraction or fraction <= 0:
        return 0
    if fraction >= 1:
        return SLOTS
    return int(fraction * SLOTS)


def score(d, weight):
    u = ((d >> 12) + 0.5) * 2.0**-52
    return -math.log(u) / weight


def variants_of(spec):
    out = []
    for v in spec:
        if isinstance(v, str):
            out.append((v, 1.0))
        else:
            out.append((v["key"], float(v.get("weight", 1.0))))
    return out


def assign(salt, unit, traffic, spec):
    """(traffic draw, slot, enrolled, variant served, variant draws)."""
    variants = variants_of(spec)
    t = draw("traffic", salt, "", unit)
    s = slot(t)
    vdraws = [draw("variant", salt, key, unit) for key, _ in variants]
    enrolled = s < threshold(traffic)
    served = variants[0][0]  # the default variant: the first listed
    if enrolled:
        best = None
        for (key, weight), d in zip(variants, vdraws):
            if weight <= 0:
                continue
            sc = score(d, weight)
            # Lowest score wins; ties go to the smaller key (bytewise = code point order).
            if best is None or sc < best[1] or (sc == best[1] and key < best[0]):
                best = (key, sc)
        served = best[0]
    return t, s, enrolled, served, vdraws


def main(path):
    with open(path, encoding="utf-8") as f:
        vectors = json.load(f)
    failures = []
    cases = vectors["cases"]
    for c in cases:
        t, s, enrolled, served, vdraws = assign(c["salt"], c["unit"], c["traffic"], c["variants"])
        want = c["expected"]
        got = {
            "trafficDraw": f"{t:016x}",
            "slot": s,
            "enrolled": enrolled,
            "variant": served,
            "variantDraws": [f"{d:016x}" for d in vdraws],
        }
        if got != want:
            failures.append(f"case {c!r}: got {got!r}")
    ranges = vectors["ranges"]
    for r in ranges:
        d = draw(r["purpose"], r["salt"], "", r["unit"])
        got = {"draw": f"{d:016x}", "slot": slot(d)}
        if got != r["expected"]:
            failures.append(f"range {r!r}: got {got!r}")
    if failures:
        print("\n".join(failures))
        print(f"{len(failures)} mismatches")
        return 1
    print(f"{len(cases)} cases ok, {len(ranges)} ranges ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

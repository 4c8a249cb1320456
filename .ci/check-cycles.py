#!/usr/bin/env python3
"""Fails when two files of src/ import each other, directly or through others.

Nodes are source files (one module each). An edge `a -> b` is a `crate::`,
`super::` or `self::` path in `a` (code, not comments) that names module `b`
or an item of it. `pub mod`/`mod` declarations and `pub use` re-exports in a
parent are not edges: they only publish a child. A cycle is reported with the
files on it, and the script prints what it checked either way.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


files = {}
for d, _, names in os.walk(ROOT):
    for n in names:
        if n.endswith(".rs"):
            p = os.path.join(d, n)
            files[module_of(p)] = p

PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+|::\{)")
GROUP = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^}]*)\}", re.S)


def resolve(base, segs):
    """The deepest file module that a path `base::segs` names."""
    best = None
    for i in range(len(segs) + 1):
        m = base + tuple(segs[:i])
        if m in files:
            best = m
    return best


def edges_of(mod, text):
    out = set()
    # Strip comments (line and doc) and string literals, crudely but enough.
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    # `pub use`/`pub mod` lines publish children; they are not dependencies.
    text = re.sub(r"^\s*pub(\([a-z]+\))?\s+(use|mod)\s[^;]*;", "", text, flags=re.M)

    def base_of(kw):
        return {"crate": (), "self": mod, "super": mod[:-1]}[kw]

    for m in GROUP.finditer(text):
        base = base_of(m.group(1)) + tuple(m.group(2).split("::")[1:])
        for item in re.split(r",", m.group(3)):
            segs = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", item.split(" as ")[0])
            t = resolve(base, segs)
            if t is not None:
                out.add(t)
    for m in PATH.finditer(text):
        base = base_of(m.group(1))
        segs = m.group(2).split("::")[1:]
        t = resolve(base, segs)
        if t is not None:
            out.add(t)
    out.discard(mod)
    return out


graph = {}
for mod, p in files.items():
    with open(p, encoding="utf-8") as f:
        graph[mod] = edges_of(mod, f.read())

name = lambda m: "/".join(m) or "lib"
n_edges = sum(len(v) for v in graph.values())
print(f"import cycles: checked {len(graph)} files of src/ and {n_edges} imports between them")

# Tarjan's strongly connected components.
index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]
sys.setrecursionlimit(10000)


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(comp)


for v in sorted(graph):
    if v not in index:
        visit(v)

if sccs:
    for comp in sccs:
        members = set(comp)
        print("import cycle between: " + ", ".join(sorted(name(m) for m in comp)))
        for m in sorted(comp):
            for t in sorted(graph[m] & members):
                print(f"    {name(m)} -> {name(t)}")
    sys.exit(1)
print("import cycles: none")

#!/usr/bin/env python3
"""The orchestrator's imports point one way, and its modules form no cycle.

Usage: scripts/layers.py [--graph]

Reads every `crate::…` and `super::…` path in orchestrator/src (comments and string
literals left out) and checks two rules:

1. Layers. Each top-level module has a level (LEVELS below); a module may name a module of
   its own level or below, never one above:
       cmd → startup → http → services → store / forges / git → metrics / clock / secrets
   (`store` is the `conveyor_store` crate, re-exported as `crate::store`.) A top-level
   module missing from LEVELS is itself a violation: a new module must choose its layer.
2. No cycles. Among the children of any one module (the top-level modules, the modules of
   `http/`, of `http/dashboard/`, …) the imports form no cycle. A module naming its own
   parent or child is not counted: that is how a folder shares its items.

Prints each violation as FILE:LINE and exits 1; otherwise prints a summary (and, with
`--graph`, which top-level module imports which).
"""

import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SRC = os.path.join(ROOT, "orchestrator", "src")

LEVELS = {
    "cmd": 5,
    "startup": 4,
    "http": 3,
    "services": 2,
    "store": 1,
    "forges": 1,
    "git": 1,
    "blobs": 1,
    "metrics": 0,
    "clock": 0,
    "secrets": 0,
    "vault": 0,
}
LAYERS = "cmd → startup → http → services → store / forges / git / blobs → metrics / clock / secrets"
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(text):
    """The source with comments and string/char literals blanked (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif re.match(r'(?:b?r(#*)")', text[i:i + 40]) and (i == 0 or not text[i - 1].isalnum()):
            m = re.match(r'b?r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append("\n" * text.count("\n", i, j + 1))
            i = j + 1
        elif c == "'":
            # A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if text.startswith("\\", i + 1):
                j = text.find("'", i + 2)
                i = n if j < 0 else j + 1
            elif i + 2 < n and text[i + 2] == "'":
                i += 3
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def module_of(path):
    """`http/api/builds.rs` → ['http', 'api', 'builds']; `http/mod.rs` → ['http']."""
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel.pop()
    return rel


def split_group(body):
    """The items of `a::b, c::{d, e}, f` at the top level of the braces."""
    items, depth, cur = [], 0, ""
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    return [i.strip() for i in items if i.strip()]


def paths_at(text, start):
    """The module paths a `crate::`/`super::` path starting at `start` names (braces expanded)."""
    m = re.compile(r"\s*((?:" + IDENT + r"\s*::\s*)*)(\{|" + IDENT + r")?").match(text, start)
    prefix = [p.strip() for p in m.group(1).split("::") if p.strip()]
    if m.group(2) == "{":
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        out = []
        for item in split_group(text[m.end():j - 1]):
            head = re.match(r"(" + IDENT + r"(?:\s*::\s*" + IDENT + r")*)", item)
            if head and head.group(1) != "self":
                out.append(prefix + [p.strip() for p in head.group(1).split("::")])
            elif head:
                out.append(prefix)
        return out
    return [prefix + ([m.group(2)] if m.group(2) else [])]


def imports(path, modules):
    """(line, target module path) for every crate-internal path in the file."""
    me = module_of(path)
    with open(path, encoding="utf-8") as f:
        text = strip(f.read())
    out = []
    # The store crate by its own name is the `store` module re-exported.
    for m in re.finditer(r"\bconveyor_store\s*::", text):
        out.append((text.count("\n", 0, m.start()) + 1, ["store"]))
    for m in re.finditer(r"\b(crate|(?:super\s*::\s*)*super)\s*::", text):
        line = text.count("\n", 0, m.start()) + 1
        if m.group(1) == "crate":
            base = []
        else:
            ups = m.group(1).count("super")
            # In `a/b.rs` (module a::b) `super` is `a`; in `a/mod.rs` (module a) it is the root.
            base = me[: len(me) - ups] if len(me) >= ups else None
            if base is None:
                continue
        for p in paths_at(text, m.end()):
            full = base + p
            # Keep the longest prefix that is a module: `http::auth::Admin` → http::auth.
            while full and tuple(full) not in modules:
                full = full[:-1]
            if full:
                out.append((line, full))
    return out


def main():
    files = []
    for dirpath, _, filenames in os.walk(SRC):
        files += [os.path.join(dirpath, f) for f in filenames if f.endswith(".rs")]
    files.sort()
    modules = {tuple(module_of(f)) for f in files if os.path.basename(f) not in ("lib.rs", "main.rs")}
    modules.add(("store",))
    problems, edges = [], {}
    for f in files:
        if os.path.basename(f) in ("lib.rs", "main.rs") and os.path.dirname(f) == SRC:
            continue
        me = module_of(f)
        rel = os.path.relpath(f, ROOT)
        top = me[0]
        if top not in LEVELS:
            problems.append(f"{rel}:1: module `{top}` has no layer: add it to LEVELS in scripts/layers.py")
            continue
        for line, target in imports(f, modules):
            to = target[0]
            if to not in LEVELS:
                problems.append(f"{rel}:{line}: `{'::'.join(target)}` is in no layer")
                continue
            if LEVELS[to] > LEVELS[top]:
                problems.append(
                    f"{rel}:{line}: upward import: {top} (level {LEVELS[top]}) names "
                    f"{'::'.join(target)} (level {LEVELS[to]}); layers: {LAYERS}")
            # The edge between the two siblings under their common parent.
            k = 0
            while k < min(len(me), len(target)) and me[k] == target[k]:
                k += 1
            if k == len(me) or k == len(target):
                continue  # a parent or a child
            parent = tuple(me[:k])
            edges.setdefault(parent, {}).setdefault(me[k], {}).setdefault(target[k], (rel, line))
    cycles = 0
    for parent, graph in sorted(edges.items()):
        for comp, cycle in find_cycles(graph):
            cycles += 1
            where = "::".join(parent) or "crate"
            hops = []
            for a, b in zip(cycle, cycle[1:]):
                rel, line = graph[a][b]
                hops.append(f"  {a} → {b}  ({rel}:{line})")
            problems.append(
                f"cycle among the modules of {where}: {', '.join(sorted(comp))} import each other; "
                f"one cycle: {' → '.join(cycle)}\n" + "\n".join(hops))
    problems = list(dict.fromkeys(problems))
    for p in problems:
        print(p)
    if problems:
        print(f"layers: {len(problems)} violation(s)")
        return 1
    top = edges.get((), {})
    if "--graph" in sys.argv[1:]:
        for m in sorted(LEVELS, key=lambda m: (-LEVELS[m], m)):
            print(f"  {m:9} (level {LEVELS[m]}) → {', '.join(sorted(top.get(m, {}))) or '—'}")
    n_edges = sum(len(t) for g in edges.values() for t in g.values())
    print(f"layers: {len(files)} files, {len(modules)} modules, {n_edges} module-to-module imports: "
          f"none upward ({LAYERS}), no cycle")
    return 0


def find_cycles(graph):
    """One cycle (as a closed list of names) per strongly connected component that has one."""
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
    nodes = set(graph) | {b for t in graph.values() for b in t}

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
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
            if len(comp) > 1 or v in graph.get(v, {}):
                comps.append(comp)

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    cycles = []
    for comp in comps:
        members = set(comp)
        start = sorted(comp)[0]
        # Walk inside the component until a node repeats.
        path, seen = [start], {start: 0}
        while True:
            nxt = sorted(w for w in graph.get(path[-1], {}) if w in members)[0]
            if nxt in seen:
                cycles.append((comp, path[seen[nxt]:] + [nxt]))
                break
            seen[nxt] = len(path)
            path.append(nxt)
    return cycles


if __name__ == "__main__":
    sys.exit(main())

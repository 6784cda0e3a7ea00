#!/usr/bin/env python3
"""Files over 500 lines and functions over 60 lines in the workspace's Rust (STYLE.md, habit 8).

Usage: scripts/shape.py [--all]

Every .rs file outside target/ is measured, tests included. A function runs from its `fn`
line to the `}` at the same indentation (the code is rustfmt-formatted, so that is where it
ends); attributes and doc comments above it do not count. Exceptions are named, with the
reason, in scripts/shape-allow.txt:

    path/to/file.rs                 reason          (the file may be long)
    path/to/file.rs:function_name   reason          (that function may be long)

Exit 1 when something is over a limit and not allowed, or an allowance no longer matches
anything (so the list shrinks as code is fixed). `--all` also lists what is allowed.
"""

import os
import re
import sys

MAX_FILE = 500
MAX_FN = 60
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
ALLOW = os.path.join(ROOT, "scripts", "shape-allow.txt")
SKIP_DIRS = {"target", ".git", "node_modules"}

FN = re.compile(
    r"^(?P<indent>\s*)(?:pub(?:\([^)]*\))?\s+)?(?:default\s+)?(?:const\s+)?(?:async\s+)?"
    r"(?:unsafe\s+)?(?:extern\s+\"[^\"]*\"\s+)?fn\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
)


def rust_files():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for f in sorted(filenames):
            if f.endswith(".rs"):
                yield os.path.relpath(os.path.join(dirpath, f), ROOT)


def functions(lines):
    """(name, first line number, length) of every function with a body."""
    out = []
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        indent = m.group("indent")
        # The signature ends at the first `{` or `;` at the end of a line.
        j = i
        while j < len(lines) and not re.search(r"[{;]\s*$", lines[j]):
            j += 1
        if j >= len(lines) or lines[j].rstrip().endswith(";"):
            continue  # a declaration without a body
        if lines[j].rstrip().endswith("}") and j == i:
            continue
        close = indent + "}"
        end = j
        if not lines[j].rstrip().endswith("{}"):
            end = next((k for k in range(j + 1, len(lines)) if lines[k].rstrip() == close), None)
            if end is None:
                continue
        out.append((m.group("name"), i + 1, end - i + 1))
    return out


def read_allow():
    allowed = {}
    if not os.path.exists(ALLOW):
        return allowed
    with open(ALLOW, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, _, reason = line.partition(" ")
            if not reason.strip():
                sys.exit(f"{ALLOW}:{n}: `{key}` needs a reason after it")
            allowed[key] = (reason.strip(), n)
    return allowed


def main():
    show_all = "--all" in sys.argv[1:]
    allowed = read_allow()
    used = set()
    problems, excused = [], []
    for path in rust_files():
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            lines = f.read().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if len(lines) > MAX_FILE:
            msg = f"{path}: {len(lines)} lines (over {MAX_FILE})"
            (excused if path in allowed else problems).append(msg)
            used.add(path)
        for name, line, length in functions(lines):
            if length <= MAX_FN:
                continue
            key = f"{path}:{name}"
            msg = f"{path}:{line}: fn {name}: {length} lines (over {MAX_FN})"
            if key in allowed or path in allowed:
                excused.append(msg)
                used.add(key if key in allowed else path)
            else:
                problems.append(msg)
    stale = [f"{ALLOW}:{n}: `{k}` is no longer over a limit: remove it" for k, (_, n) in
             allowed.items() if k not in used]
    if show_all:
        for msg in excused:
            print(f"allowed: {msg}")
    for msg in problems + stale:
        print(msg)
    if problems or stale:
        print(f"shape: {len(problems)} over the limits, {len(stale)} stale allowances")
        return 1
    print(f"shape: no file over {MAX_FILE} lines and no function over {MAX_FN}, "
          f"besides the {len(excused)} allowed in scripts/shape-allow.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())

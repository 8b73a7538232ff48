#!/usr/bin/env python3
"""Reports import cycles between the Rust files of the workspace.

Every crate root (crates/*/src/lib.rs and main.rs, crates/*/src/bin/*.rs,
crates/*/tests/*.rs, crates/*/tests/*/main.rs, crates/*/examples/*.rs) is
walked through its `mod` declarations to map module paths to files. An
edge A -> B is recorded when file A names an item of file B's module:
in a `use` statement (`crate::`, `super::`, `self::` or a child module's
name; `pub use` re-exports of a parent included, which makes a parent that
re-exports a child's item depend on that child) or in a path written in
the code (`crate::a::b`, `super::x`). Paths inside comments and string
literals do not count; `mod` declarations alone are not edges. A file's own
inline modules (`mod tests { use super::*; }`) are part of the file.

Any cycle between files, direct (A -> B -> A) or through others, is
printed with the statements that make it; the exit code is 1 if there is
one, else 0.

    python3 tools/import_cycles.py [--only crates/NAME] [REPO_ROOT]

`--only` reports only the cycles among the files under that directory.
"""

import os
import re
import sys
from collections import defaultdict

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(src):
    """Source with comments, string and char literals blanked out (lines kept)."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', src[i:]) and (i == 0 or not re.match(r"\w", src[i - 1])):
            hashes = re.match(r'r(#*)"', src[i:]).group(1)
            end = src.find('"' + hashes, i + 2 + len(hashes))
            j = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", src[i : j + 1]))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", src[i:]):
            m = re.match(r"'(\\.[^']*|[^\\'])'", src[i:])
            out.append(" " * len(m.group(0)))
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


class File:
    def __init__(self, path, module, dir_for_children):
        self.path = path
        self.module = module  # tuple of names from the crate root
        self.child_dir = dir_for_children
        self.text = strip(open(path, encoding="utf-8").read())
        self.raw = open(path, encoding="utf-8").read()


def child_dir(path, is_root):
    base = os.path.basename(path)
    if is_root or base == "mod.rs":
        return os.path.dirname(path)
    return os.path.join(os.path.dirname(path), base[:-3])


def inline_scopes(text):
    """(start, end, names) of every inline `mod x { ... }` block."""
    scopes = []
    stack = []  # (name or None, depth at open)
    depth = 0
    for m in re.finditer(r"\bmod\s+(" + IDENT + r")\s*(\{|;)|\{|\}", text):
        tok = m.group(0)
        if m.group(1):
            if m.group(2) == "{":
                stack.append((m.group(1), depth, m.end()))
                depth += 1
            continue
        if tok == "{":
            stack.append((None, depth, m.end()))
            depth += 1
        else:
            depth -= 1
            if stack:
                name, _, start = stack.pop()
                if name:
                    names = [s[0] for s in stack if s[0]] + [name]
                    scopes.append((start, m.start(), tuple(names)))
    return scopes


def scope_at(scopes, pos):
    best = ()
    for start, end, names in scopes:
        if start <= pos < end and len(names) > len(best):
            best = names
    return best


def expand_use(tree):
    """Leaf paths of a use tree like `a::{b, c::{d, e}}` (globs and `self` kept)."""
    tree = re.sub(r"\s+", "", tree)
    tree = re.sub(r"\bas" + IDENT, "", tree)

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        return parts

    def rec(prefix, s):
        i = s.find("{")
        if i < 0:
            return [prefix + s]
        head, body = s[:i], s[i + 1 : s.rfind("}")]
        out = []
        for part in split_top(body):
            if part == "self":
                out.append((prefix + head).rstrip(":"))
            else:
                out.extend(rec(prefix + head, part))
        return out

    return [p for p in rec("", tree) if p]


class Crate:
    def __init__(self, root_path):
        self.files = {}  # module tuple -> File
        self.owner = {}  # module tuple (files and their inline modules) -> File
        self.walk(root_path, (), True)

    def walk(self, path, module, is_root):
        if not os.path.exists(path) or module in self.files:
            return
        f = File(path, module, child_dir(path, is_root))
        self.files[module] = f
        self.owner[module] = f
        scopes = inline_scopes(f.text)
        for _, _, names in scopes:
            self.owner.setdefault(module + names, f)
        for m in re.finditer(r"((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", f.text):
            name = m.group(2)
            inner = scope_at(scopes, m.start())
            raw_attrs = f.raw[m.start(1) : m.end(1)]
            at = re.search(r'#\[path\s*=\s*"([^"]+)"\]', raw_attrs)
            base = f.child_dir if not inner else os.path.join(f.child_dir, *inner)
            if at:
                child = os.path.join(os.path.dirname(path) if not inner else base, at.group(1))
            else:
                child = os.path.join(base, name + ".rs")
                if not os.path.exists(child):
                    child = os.path.join(base, name, "mod.rs")
            self.walk(child, module + inner + (name,), False)

    def file_of(self, path):
        """The file holding the module `path` (or its longest module prefix)."""
        for k in range(len(path), -1, -1):
            if path[:k] in self.owner:
                return self.owner[path[:k]], path[:k]
        return None, ()

    def is_module(self, path):
        return path in self.owner

    def edges(self):
        """(from file, to file, line, statement) for every dependency between files."""
        out = []
        for module, f in self.files.items():
            scopes = inline_scopes(f.text)
            spans = []
            for m in re.finditer(r"\buse\s+([^;]+);", f.text):
                spans.append((m.start(), m.end()))
                for leaf in expand_use(m.group(1)):
                    out.extend(self.edge(f, scopes, m.start(), leaf))
            for m in re.finditer(r"(?<![\w:])((?:crate|super|self)(?:::" + IDENT + r")+)", f.text):
                if any(a <= m.start() < b for a, b in spans):
                    continue
                out.extend(self.edge(f, scopes, m.start(), m.group(1)))
        return out

    def edge(self, f, scopes, pos, leaf):
        here = f.module + scope_at(scopes, pos)
        parts = [p for p in leaf.split("::") if p]
        if parts and parts[0] == "::":
            return []
        if not parts:
            return []
        if parts[0] == "crate":
            base, parts = (), parts[1:]
        elif parts[0] in ("super", "self"):
            base = here
            while parts and parts[0] in ("super", "self"):
                if parts[0] == "super":
                    base = base[:-1]
                parts = parts[1:]
        else:
            # A relative path: only a child module of this scope counts.
            if not self.is_module(here + (parts[0],)):
                return []
            base = here
        target = base
        for p in parts:
            if p == "*" or not self.is_module(target + (p,)):
                break
            target = target + (p,)
        to, _ = self.file_of(target)
        if to is None or to is f:
            return []
        line = f.text.count("\n", 0, pos) + 1
        return [(f.path, to.path, line, leaf)]


def crate_roots(repo):
    roots = []
    crates = os.path.join(repo, "crates")
    for name in sorted(os.listdir(crates)):
        c = os.path.join(crates, name)
        for r in ("src/lib.rs", "src/main.rs"):
            if os.path.exists(os.path.join(c, r)):
                roots.append(os.path.join(c, r))
        for sub in ("src/bin", "tests", "examples", "benches"):
            d = os.path.join(c, sub)
            if not os.path.isdir(d):
                continue
            for e in sorted(os.listdir(d)):
                p = os.path.join(d, e)
                if e.endswith(".rs"):
                    roots.append(p)
                elif os.path.exists(os.path.join(p, "main.rs")):
                    roots.append(os.path.join(p, "main.rs"))
    return roots


def cycles(graph):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def shortest_cycle(graph, comp):
    """One shortest cycle through the component's first file."""
    start = comp[0]
    members = set(comp)
    prev, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, ())):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w in members and w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def main():
    args, only = sys.argv[1:], None
    if args[:1] == ["--only"] and len(args) > 1:
        only, args = args[1].rstrip("/") + "/", args[2:]
    repo = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(__file__), ".."))
    graph, why = defaultdict(set), {}
    for root in crate_roots(repo):
        for a, b, line, leaf in Crate(root).edges():
            a, b = os.path.relpath(a, repo), os.path.relpath(b, repo)
            graph[a].add(b)
            why.setdefault((a, b), f"{a}:{line} {leaf}")
    found = [c for c in cycles(graph) if only is None or all(f.startswith(only) for f in c)]
    for comp in found:
        cyc = shortest_cycle(graph, comp)
        print("cycle: " + " -> ".join(cyc))
        for a, b in zip(cyc, cyc[1:]):
            print("    " + why[(a, b)])
        if len(comp) > len(cyc) - 1:
            print(f"    (one of {len(comp)} files importing each other: {', '.join(comp)})")
    files = sum(len(v) for v in graph.values())
    print(f"{len(found)} import cycle(s) over {len(graph)} importing files, {files} edges")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

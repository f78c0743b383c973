#!/usr/bin/env python3
"""clang-tidy over SOURCES with BUILD's compile commands, one clang-tidy per core,
remembering clean verdicts (hack/tidy.sh runs it; usage: tidy_cache.py BUILD SRC...).

A source that was clean is not checked again while nothing it is checked with
changed. The key of a verdict is a SHA-256 over: clang-tidy's version, .clang-tidy,
the arguments below, the compile command (the checkout's and the build's paths
written relative, so every clone shares the cache, as ccache does with
CCACHE_BASEDIR), and the path and content of the source and of every header the
compiler reads for it (`-M`, system headers included). Only clean verdicts are
kept (an empty file named by the key, under $CRONLANE_CACHE/tidy); a source with
findings is checked every time. CRONLANE_TIDY_CACHE=0 checks everything.

Written here rather than taken from a tool: the clang-tidy caches around
(clang-tidy-cache, ctcache) key on the preprocessed source, which drops comments
and so misses a removed NOLINT, and need a wrapper installed in front of clang-tidy.
"""
import concurrent.futures
import hashlib
import json
import os
import shlex
import subprocess
import sys

TIDY_ARGS = ["--quiet", "--extra-arg=-Wno-gnu-statement-expression"]


def main():
    build, sources = sys.argv[1], sys.argv[2:]
    root = os.path.realpath(os.getcwd())
    build_abs = os.path.realpath(build)
    use_cache = os.environ.get("CRONLANE_TIDY_CACHE", "1") != "0"
    cache = os.path.join(os.environ.get("CRONLANE_CACHE", os.path.expanduser("~/.cache/cronlane")), "tidy")
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(build, "compile_commands.json")) as f:
        commands = {os.path.realpath(e["file"]): e for e in json.load(f)}
    version = subprocess.run(["clang-tidy", "--version"], capture_output=True, text=True, check=True).stdout
    with open(".clang-tidy") as f:
        config = hashlib.sha256((version + f.read() + " ".join(TIDY_ARGS)).encode()).hexdigest()

    def relative(text):
        return text.replace(build_abs, "<build>").replace(root, "<src>")

    content = {}  # path -> SHA-256 of its bytes (headers are shared by many sources)

    def content_hash(path):
        if path not in content:
            with open(path, "rb") as f:
                content[path] = hashlib.sha256(f.read()).hexdigest()
        return content[path]

    def key_of(source):
        entry = commands.get(os.path.realpath(source))
        if entry is None or not use_cache:
            return None
        args = shlex.split(entry["command"]) if "command" in entry else list(entry["arguments"])
        kept, skip = [], False
        for a in args:  # the command without its output
            if skip:
                skip = False
            elif a == "-o":
                skip = True
            elif a != "-c":
                kept.append(a)
        deps = subprocess.run(kept + ["-M"], cwd=entry["directory"], capture_output=True, text=True)
        if deps.returncode != 0:
            return None  # clang-tidy will say what is wrong
        files = deps.stdout.replace("\\\n", " ").split(":", 1)[1].split()
        h = hashlib.sha256(config.encode())
        h.update(relative(" ".join(kept)).encode())
        # In the order of the written-relative paths: the absolute order depends on
        # where the clone is (/tmp/cl sorts before /usr, /work/main after it).
        paths = {relative(path): path for path in
                 {os.path.realpath(os.path.join(entry["directory"], p)) for p in files}}
        for rel in sorted(paths):
            h.update(rel.encode())
            h.update(content_hash(paths[rel]).encode())
        return h.hexdigest()

    def check(source):
        key = key_of(source)
        if key is not None and os.path.exists(os.path.join(cache, key)):
            os.utime(os.path.join(cache, key))
            return source, True, True, ""
        p = subprocess.run(["clang-tidy", "-p", build] + TIDY_ARGS + [source], capture_output=True, text=True)
        clean = p.returncode == 0 and not p.stdout.strip()
        if clean and key is not None:
            open(os.path.join(cache, key), "w").close()
        # Findings go to stdout; stderr has clang-tidy's "N warnings generated"
        # chatter, shown only when there is nothing else to explain a failure.
        return source, clean, False, p.stdout if p.stdout.strip() else p.stderr

    jobs = os.cpu_count() or 1
    print(f"clang-tidy: {len(sources)} files, {jobs} at a time", flush=True)
    failed = cached = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for source, clean, hit, output in pool.map(check, sources):
            cached += hit
            if not clean:
                failed += 1
                print(f"--- {source}\n{output}", flush=True)
    print(f"clang-tidy: {cached} of {len(sources)} unchanged since a clean check (cache {cache})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""whale run from the command line: seeded sampling is reproducible across runs and thread counts, stop strings and
the token limit end generation and say so, and bad arguments give clear errors.

Usage: run_cli_test.py --whale BIN --model DIR
"""
import argparse
import subprocess
import sys

failures = []
checks = [0]


def check(name, ok, detail=""):
    checks[0] += 1
    print(f"[{'ok' if ok else 'FAIL'}] {name}" + ("" if ok else f": {detail}"))
    if not ok:
        failures.append(name)


def run(whale, args):
    return subprocess.run([whale, "run"] + args, capture_output=True, timeout=300)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whale", required=True)
    ap.add_argument("--model", required=True)
    a = ap.parse_args()
    w, m = a.whale, a.model
    base = ["--model", m, "-p", "The answer is", "-n", "40", "--seed", "1234", "--temp", "0.9", "--top-k", "50",
            "--top-p", "0.9", "--min-p", "0.01", "--repeat-penalty", "1.1", "--ignore-eos"]
    outs = [run(w, base + ["--threads", t]) for t in ("1", "2", "1", "3")]
    check("seeded sampling runs", all(o.returncode == 0 for o in outs), outs[0].stderr)
    check("same seed, same text across runs and thread counts", len({o.stdout for o in outs}) == 1,
          [o.stdout for o in outs])
    other = run(w, base[:-9] + ["--seed", "99", "--temp", "0.9", "--ignore-eos"])
    check("another seed, another text", other.stdout != outs[0].stdout)
    check("the token limit is reported", b"stopped: length" in outs[0].stderr, outs[0].stderr)

    full = run(w, ["--model", m, "-p", "x", "-n", "30", "--temp", "0", "--ignore-eos"]).stdout.decode(errors="replace")
    stop = full[8:11] if len(full) > 12 else None
    if stop and "\ufffd" not in stop:
        p = run(w, ["--model", m, "-p", "x", "-n", "30", "--temp", "0", "--ignore-eos", "--stop", stop])
        got = p.stdout.decode(errors="replace")
        check("a stop string ends the text before it", got == full[: full.find(stop)] and b"stopped: stop" in p.stderr,
              (got, full, stop))
    ctx = run(w, ["--model", m, "-p", "x", "--temp", "0", "--ignore-eos", "--ctx", "12"])
    check("the end of the context is reported", ctx.returncode == 0 and b"stopped: context" in ctx.stderr, ctx.stderr)

    def bad(name, args, *words):
        p = run(w, args)
        err = p.stderr.decode(errors="replace")
        ok = p.returncode != 0 and all(x in err for x in words) and "Sanitizer" not in err and len(err.strip().splitlines()) <= 2
        check(name, ok, err)

    bad("unknown flag", ["--model", m, "-p", "x", "--bogus"], "--bogus")
    bad("negative -n", ["--model", m, "-p", "x", "-n", "-3"], "--n-predict", "-3")
    bad("temperature out of range", ["--model", m, "-p", "x", "--temp", "150"], "--temp")
    bad("negative temperature", ["--model", m, "-p", "x", "--temp", "-1"], "--temp")
    bad("top-p out of range", ["--model", m, "-p", "x", "--top-p", "1.5"], "--top-p")
    bad("presence penalty out of range", ["--model", m, "-p", "x", "--presence-penalty", "5"], "presence_penalty")
    bad("missing model directory", ["--model", m + "-nope", "-p", "x"], "model directory not found")
    bad("missing prompt", ["--model", m], "--prompt")
    bad("prompt longer than the context", ["--model", m, "-p", "word " * 50, "--ctx", "8"], "context")
    print(f"{checks[0] - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

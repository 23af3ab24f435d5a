#!/usr/bin/python3
"""Compares builds of whale on one model: runs `whale bench` with each binary in turn, round after round, and
summarises the medians and the ratios paired by round.

  /usr/bin/python3 bench/ab.py --model DIR --rounds 10 build-before/whale build/release/whale \
      [--threads 2] [--key decode_tok_s] [--bench-args "-p 0 -n 64 --load read"]

A phase of the decode step compares the same way: --key decode_phases.attention.ms_per_token with --phases in
--bench-args (the ratio is then of times: below 1 is faster, and "ahead" counts the rounds where it was slower).

The host's bandwidth moves by tens of percent between minutes (docs/performance.md), so one run of each build says
little: the order of the binaries flips every round, each ratio compares runs seconds apart, and "ahead" counts the
rounds in which a build beat the first. A change worth keeping shows in the paired median and in most rounds.
"""
import argparse
import json
import statistics
import subprocess
import sys


def bench(binary, model, threads, extra, key):
    cmd = [binary, "bench", "--model", model, "-r", "1", "--threads", str(threads)] + extra
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"ab.py: {' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-500:]}")
    value = json.loads(p.stdout)["results"][0]
    # A dotted key reaches into nested fields: decode_phases.attention.ms_per_token (with --phases).
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            have = ", ".join(sorted(value)) if isinstance(value, dict) else type(value).__name__
            sys.exit(f"ab.py: whale bench reported no '{key}' (at '{part}' it has: {have})")
        value = value[part]
    if not isinstance(value, (int, float)):
        sys.exit(f"ab.py: '{key}' is not a number ({value!r})")
    return value


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binaries", nargs="+", help="whale binaries; the first is the baseline")
    ap.add_argument("--model", required=True)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--key", default="decode_tok_s",
                    help="the field of whale bench's results to compare; dots reach into nested ones, e.g. "
                         "decode_phases.attention.ms_per_token with --bench-args \"-p 0 -n 64 --phases\"")
    ap.add_argument("--bench-args", default="-p 0 -n 64 --load read", help="more whale bench arguments")
    args = ap.parse_args()
    if len(args.binaries) < 2:
        sys.exit("ab.py: give at least two binaries")
    extra = args.bench_args.split()
    values = [[] for _ in args.binaries]
    for r in range(args.rounds):
        order = range(len(args.binaries)) if r % 2 == 0 else reversed(range(len(args.binaries)))
        for i in order:
            values[i].append(bench(args.binaries[i], args.model, args.threads, extra, args.key))
        print(f"round {r + 1}/{args.rounds}: " + " ".join(f"{v[-1]:.2f}" for v in values), file=sys.stderr)
    for binary, v in zip(args.binaries, values):
        print(f"{binary}: median {statistics.median(v):.3f} ({' '.join(f'{x:.2f}' for x in v)})")
    for i in range(1, len(args.binaries)):
        ratios = [b / a for a, b in zip(values[0], values[i])]
        print(f"{args.binaries[i]} / {args.binaries[0]}: paired median {statistics.median(ratios):.3f} "
              f"(range {min(ratios):.3f}-{max(ratios):.3f}), ahead in {sum(x > 1 for x in ratios)} of {args.rounds}")


if __name__ == "__main__":
    main()

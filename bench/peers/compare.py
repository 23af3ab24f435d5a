#!/usr/bin/python3
"""Runs whale bench and the peers' llama-bench alternately, in one session, and summarises medians and ratios.

Each round runs, for every width given, whale then ik_llama.cpp then llama.cpp (whichever are given), so that slow
drifts of the machine (turbo, other load) hit every engine alike. The peers are built outside this repository (see
docs/performance.md for the exact commands); this script only runs their binaries.

  /usr/bin/python3 bench/peers/compare.py --whale build/release/whale --rounds 5 \
      --width bf16:WHALE_DIR:IK_GGUF:MAINLINE_GGUF[:WHALE_ARGS] --width q8:... --width q4:... \
      --ik-bench /work/peers/ik_llama.cpp/build/bin/llama-bench \
      --mainline-bench /work/peers/llama.cpp/build/bin/llama-bench --out results.json

Prefill: 512 tokens (`llama-bench -p 512 -n 0`; whale bench -p 512). Decode: 32 tokens (`-p 0 -n 32`; whale bench
-n 32 after a 16-token prompt). ik_llama.cpp runs with -mla 3 -fmoe 1, llama.cpp with -fa on, each plus what
--ik-args / --mainline-args add (e.g. "-thp 1": ik_llama.cpp's weights in hugetlbfs pages, which need
/proc/sys/vm/nr_hugepages reserved). whale runs with --load (default auto) and the width's WHALE_ARGS (space-separated,
e.g. "--activations f32"; a second width of the same files can measure whale both ways). All with --threads.

The summary gives each engine's medians, the ratio of whale's median to each peer's, and the ratios paired by round
("paired median", "paired range"): whale and a peer of the same round run minutes apart at most, while the host's
bandwidth moves between rounds.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


class Failed(Exception):
    pass


def run(cmd):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise Failed(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return p.stdout, time.time() - t0


def warm(path):
    """Reads a model into the page cache (untimed), so that no engine is measured reading the disk: the three
    engines' files together exceed RAM, and each round evicts the others'."""
    paths = [path] if os.path.isfile(path) else [os.path.join(path, f) for f in sorted(os.listdir(path))]
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


def llama_bench(binary, gguf, threads, extra, prefill, decode, depth_args=()):
    """depth_args: how this llama-bench decodes after a prompt (ik_llama.cpp: -gp D,N, timing only the N tokens;
    llama.cpp: -d D); empty: decode from an empty context."""
    warm(gguf)
    out = {}
    if prefill:
        text, _ = run([binary, "-m", gguf, "-t", str(threads), "-p", str(prefill), "-n", "0", "-r", "1", "-o", "json"] + extra)
        out["prefill_tok_s"] = json.loads(text)[0]["avg_ts"]
    if decode:
        shape = list(depth_args) if depth_args else ["-p", "0", "-n", str(decode)]
        text, _ = run([binary, "-m", gguf, "-t", str(threads)] + shape + ["-r", "1", "-o", "json"] + extra)
        out["decode_tok_s"] = json.loads(text)[0]["avg_ts"]
    return out


def whale_bench(binary, model, threads, prefill, decode, load, extra=(), depth=0):
    warm(model)
    text, _ = run([binary, "bench", "--model", model, "-p", str(prefill), "-n", str(decode), "-r", "1",
                   "--threads", str(threads), "--load", load] + (["-d", str(depth)] if depth else []) + list(extra))
    j = json.loads(text)
    r = j["results"][0]
    out = {"load_seconds": j["load_seconds"], "bytes_per_token": j["bytes_per_token"]}
    if "checkpoint_huge_page_bytes" in j:  # the share of the weights in huge pages (small pages slow decode)
        out["huge_page_percent"] = 100.0 * j["checkpoint_huge_page_bytes"] / max(j["checkpoint_bytes"], 1)
    for key in ("prefill_tok_s", "decode_tok_s", "memory_read_gb_s", "bandwidth_percent"):
        if key in r:  # -p 0 has no prefill, -n 0 no decode
            out[key] = r[key]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--whale", required=True)
    ap.add_argument("--width", action="append", required=True,
                    help="NAME:WHALE_MODEL_DIR:IK_GGUF:MAINLINE_GGUF (a path may be empty to skip that engine)")
    ap.add_argument("--ik-bench")
    ap.add_argument("--mainline-bench")
    ap.add_argument("--ik-args", default="", help="more llama-bench arguments for ik_llama.cpp")
    ap.add_argument("--mainline-args", default="", help="more llama-bench arguments for llama.cpp")
    ap.add_argument("--load", default="auto", help="whale bench --load")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--prefill", type=int, default=512)
    ap.add_argument("--decode", type=int, default=32)
    ap.add_argument("--depth", type=int, default=0,
                    help="decode after a prompt of this many tokens (whale bench -d; ik_llama.cpp llama-bench "
                         "-gp DEPTH,DECODE; llama.cpp llama-bench -d); 0: whale's default 16-token prompt, the peers "
                         "from an empty context")
    ap.add_argument("--out", help="write all samples and the summary as JSON")
    args = ap.parse_args()

    widths = []
    for w in args.width:
        name, wdir, ik, ml, wargs = (w.split(":") + ["", "", "", ""])[:5]
        widths.append((name, wdir, ik, ml, wargs.split()))
    samples = {}  # (width, engine) -> list of dicts
    failures = []

    def attempt(key, fn, rnd):
        try:
            samples.setdefault(key, []).append(dict(fn(), round=rnd))
        except Failed as e:  # recorded, and the other runs go on
            failures.append(str(e))
            print(e, file=sys.stderr, flush=True)
        if args.out:
            with open(args.out + ".partial", "w") as f:
                json.dump({"samples": {f"{k[0]} {k[1]}": v for k, v in samples.items()}, "failures": failures}, f,
                          indent=2)

    for rnd in range(args.rounds):
        for name, wdir, ik, ml, wargs in widths:
            if wdir:
                attempt((name, "whale"), lambda: whale_bench(args.whale, wdir, args.threads, args.prefill, args.decode,
                                                                  args.load, wargs, args.depth), rnd)
            if ik and args.ik_bench:
                attempt((name, "ik_llama.cpp"), lambda: llama_bench(
                    args.ik_bench, ik, args.threads, ["-mla", "3", "-fmoe", "1"] + args.ik_args.split(),
                    args.prefill, args.decode,
                    ["-p", "0", "-n", "0", "-gp", f"{args.depth},{args.decode}"] if args.depth else ()), rnd)
            if ml and args.mainline_bench:
                attempt((name, "llama.cpp"), lambda: llama_bench(
                    args.mainline_bench, ml, args.threads, ["-fa", "on"] + args.mainline_args.split(),
                    args.prefill, args.decode,
                    ["-p", "0", "-n", str(args.decode), "-d", str(args.depth)] if args.depth else ()), rnd)
            print(f"round {rnd + 1}/{args.rounds} {name} done", file=sys.stderr, flush=True)

    summary = []
    for name, *_ in widths:
        row = {"width": name}
        for engine in ("whale", "ik_llama.cpp", "llama.cpp"):
            s = samples.get((name, engine))
            if not s:
                continue
            for key in s[0]:
                if key != "round":
                    row[f"{engine} {key}"] = statistics.median(x[key] for x in s)
        for key in ("prefill_tok_s", "decode_tok_s"):
            for peer in ("ik_llama.cpp", "llama.cpp"):
                if f"whale {key}" in row and f"{peer} {key}" in row:
                    row[f"whale/{peer} {key}"] = row[f"whale {key}"] / row[f"{peer} {key}"]
                    # Paired by round: the host's bandwidth moves between rounds (and within them), and the two
                    # engines of one round run minutes apart at most, so the ratio per round and its median say
                    # more than the ratio of two medians taken over different rounds.
                    ours = {x["round"]: x[key] for x in samples[(name, "whale")] if key in x}
                    theirs = {x["round"]: x[key] for x in samples[(name, peer)] if key in x}
                    ratios = sorted(ours[r] / theirs[r] for r in ours if r in theirs and theirs[r] > 0)
                    if ratios:
                        row[f"whale/{peer} {key} paired median"] = statistics.median(ratios)
                        row[f"whale/{peer} {key} paired range"] = [ratios[0], ratios[-1]]
        summary.append(row)

    print(json.dumps(summary, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"summary": summary, "failures": failures, "samples": {f"{k[0]} {k[1]}": v for k, v in samples.items()},
                       "args": vars(args)}, f, indent=2)


if __name__ == "__main__":
    main()

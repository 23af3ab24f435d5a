#!/usr/bin/python3
"""Training throughput of `whale train` against the PyTorch CPU peer (torch_train.py) on the same model.

Usage:
  /usr/bin/python3 bench/train/compare_train.py --whale build/release/whale --config CONFIG.json
      [--batch-size 16] [--seq-len 128] [--steps 10] [--warmup 2] [--threads 2] [--rounds 3] [--mtp-weight 0]
      [--python /usr/bin/python3] [--keep DIR] [--torch-args '...']

Runs the two engines alternately, --rounds times each (the order flips every round), with the same config,
batch B x seq-len T, thread count and MTP weight; each run does --warmup untimed steps and --steps timed ones.
  whale:   whale train --config CFG --data DATA.jsonl --out TMP --steps S+W --batch-size B --seq-len T
             --threads N --eval-every 0 --eval-windows 1 --log-every 1000 [--mtp-weight L]
           DATA.jsonl: seeded random ids from scripts/reference/make_token_data.py (at least 1.2 (S+W) B T tokens).
           Step times: "seconds" of train_log.jsonl's lines after the first W.
  pytorch: torch_train.py --config CFG --batch-size B --seq-len T --steps S --warmup-steps W --threads N --json
             [--mtp-weight L] [--torch-args]  (with its default BLAS/OpenMP tuning; see torch_train.py)
A run's tokens/s is B*T / (median step seconds). Prints a JSON summary on stdout: each engine's per-round tokens/s,
their median over the rounds, and ratio = whale / pytorch (progress goes to stderr).
With --peak-bench BIN (build/release/bench/peak_arith_bench), the machine's f32 FMA peak is measured before and after
the rounds, one run per thread pinned to its own CPU (taskset), summed over --threads CPUs; each engine's GFLOP/s is
its tokens/s times the training FLOPs per token that whale logs (src/whale/train/flops.h), and MFU = GFLOP/s / peak.
"""

import argparse
import json
import math
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def make_data(python, path, vocab, tokens, seed=0):
    min_len, max_len = 256, 1024
    docs = math.ceil(tokens / ((min_len + max_len) / 2)) + 2
    subprocess.run([python, os.path.join(REPO, "scripts/reference/make_token_data.py"), "--out", path,
                    "--vocab", str(vocab), "--docs", str(docs), "--min-len", str(min_len), "--max-len", str(max_len),
                    "--seed", str(seed)], check=True)


def run_whale(a, data, workdir, rnd):
    out = os.path.join(workdir, f"whale-{rnd}")
    cmd = [a.whale, "train", "--config", a.config, "--data", data, "--out", out,
           "--steps", str(a.steps + a.warmup), "--batch-size", str(a.batch_size), "--seq-len", str(a.seq_len),
           "--threads", str(a.threads), "--eval-every", "0", "--eval-windows", "1", "--log-every", "1000"]
    if a.mtp_weight > 0:
        cmd += ["--mtp-weight", repr(a.mtp_weight)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"whale train failed ({p.returncode}):\n{p.stdout[-4000:]}")
    with open(os.path.join(out, "train_log.jsonl")) as f:
        lines = sorted((json.loads(l) for l in f if l.strip()), key=lambda j: j["step"])
    timed = [j for j in lines if j["step"] > a.warmup]
    if len(timed) != a.steps:
        raise SystemExit(f"whale: expected {a.steps} timed steps in train_log.jsonl, found {len(timed)}")
    secs = [j["seconds"] for j in timed]
    flops_per_token = statistics.median(j["gflops_per_second"] * 1e9 / j["tokens_per_second"] for j in timed)
    if not a.keep:
        shutil.rmtree(out, ignore_errors=True)
    return {"tokens_per_second": a.batch_size * a.seq_len / statistics.median(secs),
            "step_seconds": [round(s, 5) for s in secs], "first_loss": lines[0]["loss"],
            "last_loss": lines[-1]["loss"], "wall_seconds": round(wall, 2), "flops_per_token": flops_per_token}


def measure_peak(bench, threads):
    """f32 FMA GFLOP/s of `threads` CPUs running peak_arith_bench at once, each pinned to its own CPU."""
    procs = [subprocess.Popen(["taskset", "-c", str(c), bench], stdout=subprocess.PIPE, text=True)
             for c in range(threads)]
    total = 0.0
    for p in procs:
        out, _ = p.communicate()
        m = re.search(r"f32 FMA: ([0-9.]+) GFLOP/s", out)
        if m is None:
            raise SystemExit(f"{bench}: no 'f32 FMA: N GFLOP/s' in its output")
        total += float(m.group(1))
    return total


def run_torch(a):
    cmd = [a.python, os.path.join(HERE, "torch_train.py"), "--config", a.config, "--batch-size", str(a.batch_size),
           "--seq-len", str(a.seq_len), "--steps", str(a.steps), "--warmup-steps", str(a.warmup),
           "--threads", str(a.threads), "--json"]
    if a.mtp_weight > 0:
        cmd += ["--mtp-weight", repr(a.mtp_weight)]
    cmd += shlex.split(a.torch_args)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"torch_train.py failed ({p.returncode}):\n{p.stderr[-4000:]}")
    j = json.loads(p.stdout.strip().splitlines()[-1])
    return {"tokens_per_second": j["median_tokens_per_second"], "step_seconds": j["step_seconds"],
            "first_loss": j["losses"][0], "last_loss": j["losses"][-1], "wall_seconds": round(wall, 2),
            "torch_version": j["torch_version"], "params": j["params"], "attention": j["attention"],
            "openblas_core": j.get("openblas_core"), "omp_wait_policy": j.get("omp_wait_policy")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--whale", required=True, help="whale binary")
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per run")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per run (not whale's LR --warmup)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mtp-weight", type=float, default=0.0)
    ap.add_argument("--python", default="/usr/bin/python3", help="interpreter with torch")
    ap.add_argument("--peak-bench", metavar="BIN", help="peak_arith_bench binary: report MFU against its f32 peak")
    ap.add_argument("--keep", metavar="DIR", help="keep the data and whale's outputs in DIR")
    ap.add_argument("--torch-args", default="", metavar="ARGS",
                    help="extra torch_train.py arguments, e.g. '--openblas-coretype default --omp-wait-policy default'")
    a = ap.parse_args()
    if min(a.batch_size, a.seq_len, a.steps, a.threads, a.rounds) < 1 or a.warmup < 0:
        ap.error("need --batch-size, --seq-len, --steps, --threads, --rounds >= 1 and --warmup >= 0")
    a.whale = os.path.abspath(a.whale)
    a.config = os.path.abspath(a.config)
    with open(a.config) as f:
        vocab = json.load(f)["vocab_size"]

    workdir = os.path.abspath(a.keep) if a.keep else tempfile.mkdtemp(prefix="compare_train.")
    os.makedirs(workdir, exist_ok=True)
    try:
        data = os.path.join(workdir, "data.jsonl")
        need = math.ceil((a.steps + a.warmup) * a.batch_size * a.seq_len * 1.2) + a.seq_len + 1
        make_data(a.python, data, vocab, need)
        runs = {"whale": [], "pytorch": []}
        peaks = [measure_peak(a.peak_bench, a.threads)] if a.peak_bench else []
        for r in range(a.rounds):
            order = ["whale", "pytorch"] if r % 2 == 0 else ["pytorch", "whale"]
            for eng in order:
                load = os.getloadavg()[0]
                res = run_whale(a, data, workdir, r) if eng == "whale" else run_torch(a)
                res["load_before"] = round(load, 2)
                runs[eng].append(res)
                log(f"round {r + 1}/{a.rounds} {eng:8s} {res['tokens_per_second']:9.1f} tok/s  "
                    f"(loss {res['first_loss']:.3f} -> {res['last_loss']:.3f}, wall {res['wall_seconds']} s, "
                    f"load {load:.2f})")
        if a.peak_bench:
            peaks.append(measure_peak(a.peak_bench, a.threads))
    finally:
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    def summary(eng):
        tps = [x["tokens_per_second"] for x in runs[eng]]
        return {"tokens_per_second_per_round": [round(t, 1) for t in tps],
                "median_tokens_per_second": round(statistics.median(tps), 1), "runs": runs[eng]}

    w, t = summary("whale"), summary("pytorch")
    out = {
        "config": a.config, "batch_size": a.batch_size, "seq_len": a.seq_len, "tokens_per_step": a.batch_size * a.seq_len,
        "steps": a.steps, "warmup": a.warmup, "threads": a.threads, "rounds": a.rounds, "mtp_weight": a.mtp_weight,
        "torch_version": runs["pytorch"][0]["torch_version"], "torch_args": a.torch_args,
        "torch_openblas_core": runs["pytorch"][0]["openblas_core"],
        "torch_omp_wait_policy": runs["pytorch"][0]["omp_wait_policy"],
        "torch_attention": runs["pytorch"][0]["attention"], "cpus": os.cpu_count(),
        "whale": w, "pytorch": t,
        "ratio_whale_over_pytorch": round(w["median_tokens_per_second"] / t["median_tokens_per_second"], 3),
    }
    if peaks:
        fpt = statistics.median(x["flops_per_token"] for x in runs["whale"])
        peak = statistics.mean(peaks)
        out["flops_per_token"] = fpt
        out["peak_f32_gflops"] = [round(p, 1) for p in peaks]
        for eng, summ in (("whale", w), ("pytorch", t)):
            gf = summ["median_tokens_per_second"] * fpt * 1e-9
            summ["gflops_per_second"] = round(gf, 1)
            summ["mfu"] = round(gf / peak, 3)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""whale bench on a tiny checkpoint: stdout is one JSON object with every documented field, --json writes the same
JSON, --threads 1,2 gives one result per thread count with speedups against the first, and bad arguments give one-line
errors. No timing thresholds: only that the numbers are positive and consistent with each other.

Usage: bench_cli_test.py --whale BIN --model DIR
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

failures = []
checks = [0]


def check(name, ok, detail=""):
    checks[0] += 1
    print(f"[{'ok' if ok else 'FAIL'}] {name}" + ("" if ok else f": {detail}"))
    if not ok:
        failures.append(name)


TOP = ["model", "prompt_tokens", "generated_tokens", "decode_prompt_tokens", "repetitions", "load_seconds",
       "checkpoint_bytes", "checkpoint_huge_page_bytes", "bytes_per_token", "weight_bytes_per_token", "routed_expert_bytes_per_token",
       "cache_bytes_per_token", "decode_mean_context", "bandwidth_buffer_bytes", "bandwidth_kernel",
       "bandwidth_huge_pages", "results", "peak_rss_bytes"]
PER_THREADS = ["threads"] + [f"{k}{s}" for k in ("prefill_tok_s", "decode_tok_s", "memory_read_gb_s")
                             for s in ("", "_min", "_max")] + [
    "decode_gb_s", "bandwidth_percent", "bandwidth_percent_paired", "prefill_speedup", "decode_speedup",
    "memory_read_speedup"]


def positive(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whale", required=True)
    ap.add_argument("--model", required=True)
    a = ap.parse_args()
    w, m = a.whale, a.model

    with tempfile.TemporaryDirectory() as tmp:
        out_file = os.path.join(tmp, "bench.json")
        p = subprocess.run([w, "bench", "--model", m, "-p", "8", "-n", "4", "-r", "2", "--threads", "1,2",
                            "--bandwidth-mib", "256", "--json", out_file], capture_output=True, timeout=300)
        check("whale bench runs", p.returncode == 0, p.stderr)
        try:
            report = json.loads(p.stdout)
        except ValueError as e:
            report = {}
            check("stdout is JSON only", False, f"{e}: {p.stdout[:300]!r}")
        try:
            with open(out_file, "rb") as f:
                check("--json writes the same JSON", f.read() == p.stdout)
        except OSError as e:
            check("--json writes the same JSON", False, e)
        check("progress goes to stderr", b"threads 1 run 1/2" in p.stderr and b"threads 2 run 2/2" in p.stderr, p.stderr)

    missing = [k for k in TOP if k not in report]
    check("top-level fields", not missing, missing)
    if missing:
        return finish()
    check("options echoed", (report["prompt_tokens"], report["generated_tokens"], report["repetitions"]) == (8, 4, 2),
          report)
    check("sizes positive", all(positive(report[k]) for k in ("checkpoint_bytes", "bytes_per_token",
                                                              "weight_bytes_per_token", "routed_expert_bytes_per_token",
                                                              "cache_bytes_per_token", "bandwidth_buffer_bytes",
                                                              "peak_rss_bytes", "load_seconds")), report)
    check("bytes per token = weights + cache",
          report["bytes_per_token"] == report["weight_bytes_per_token"] + report["cache_bytes_per_token"], report)
    check("routed experts are part of the weights",
          report["routed_expert_bytes_per_token"] < report["weight_bytes_per_token"], report)
    check("huge pages within the checkpoint's memory",
          isinstance(report["checkpoint_huge_page_bytes"], int)
          and 0 <= report["checkpoint_huge_page_bytes"] <= report["checkpoint_bytes"] + (8 << 20), report)
    check("weights per token fit in the checkpoint", report["weight_bytes_per_token"] <= report["checkpoint_bytes"],
          report)
    check("mean decode context", report["decode_mean_context"] == report["decode_prompt_tokens"] + (4 + 1) / 2, report)
    check("bandwidth buffer as asked", report["bandwidth_buffer_bytes"] == 256 << 20, report)
    # The 256 MiB probe buffer would push the peak past its own size; the model and (under ASan) the shadow stay below.
    check("the bandwidth buffer is not in the peak RSS", report["peak_rss_bytes"] < report["bandwidth_buffer_bytes"], report)
    check("kernel named", isinstance(report["bandwidth_kernel"], str) and report["bandwidth_kernel"], report)

    results = report["results"]
    check("one result per thread count", [r.get("threads") for r in results] == [1, 2], results)
    for r in results:
        t = r.get("threads")
        miss = [k for k in PER_THREADS if k not in r]
        check(f"threads {t}: fields", not miss, miss)
        if miss:
            continue
        check(f"threads {t}: positive", all(positive(r[k]) for k in PER_THREADS), r)
        for k in ("prefill_tok_s", "decode_tok_s", "memory_read_gb_s"):
            check(f"threads {t}: {k} min <= median <= max", r[k + "_min"] <= r[k] <= r[k + "_max"], r)
        gb_s = report["bytes_per_token"] * r["decode_tok_s"] / 1e9
        check(f"threads {t}: decode GB/s = bytes per token x tok/s", math.isclose(r["decode_gb_s"], gb_s, rel_tol=1e-9),
              r)
        check(f"threads {t}: % of bandwidth", math.isclose(r["bandwidth_percent"],
                                                           100 * r["decode_gb_s"] / r["memory_read_gb_s"],
                                                           rel_tol=1e-9), r)
        # The median of the runs' own ratios lies between the extreme ratios the runs' bounds allow.
        gb = report["bytes_per_token"] / 1e9
        lo = 100 * gb * r["decode_tok_s_min"] / r["memory_read_gb_s_max"]
        hi = 100 * gb * r["decode_tok_s_max"] / r["memory_read_gb_s_min"]
        check(f"threads {t}: paired % of bandwidth within the runs' bounds",
              lo * (1 - 1e-9) <= r["bandwidth_percent_paired"] <= hi * (1 + 1e-9), r)
        first = results[0]
        for k, s in (("prefill_tok_s", "prefill_speedup"), ("decode_tok_s", "decode_speedup"),
                     ("memory_read_gb_s", "memory_read_speedup")):
            check(f"threads {t}: {s}", math.isclose(r[s], r[k] / first[k], rel_tol=1e-9), r)

    # Prefill only and decode only leave out the other's fields.
    p = subprocess.run([w, "bench", "--model", m, "-p", "4", "-n", "0", "-r", "1", "--threads", "1",
                        "--bandwidth-mib", "4"], capture_output=True, timeout=300)
    r = json.loads(p.stdout)["results"][0] if p.returncode == 0 else {}
    check("-n 0: prefill only", "prefill_tok_s" in r and "decode_tok_s" not in r and "bandwidth_percent" not in r
          and "bandwidth_percent_paired" not in r,
          p.stdout + p.stderr)

    # --parallel: the aggregate decode of several sequences at once, and its ratio to one sequence run by run.
    p = subprocess.run([w, "bench", "--model", m, "-p", "0", "-n", "3", "-r", "2", "--threads", "2", "--parallel", "3",
                        "--bandwidth-mib", "4"], capture_output=True, timeout=300)
    check("--parallel runs", p.returncode == 0, p.stderr)
    rep = json.loads(p.stdout) if p.returncode == 0 else {}
    r = rep.get("results", [{}])[0]
    check("--parallel echoed", rep.get("parallel") == 3, rep)
    check("--parallel fields", all(k in r for k in ("parallel_decode_tok_s", "parallel_decode_tok_s_min",
                                                   "parallel_decode_tok_s_max", "parallel_speedup_paired")), r)
    if "parallel_decode_tok_s" in r:
        check("--parallel positive", positive(r["parallel_decode_tok_s"]) and positive(r["parallel_speedup_paired"]), r)
        check("--parallel min <= median <= max",
              r["parallel_decode_tok_s_min"] <= r["parallel_decode_tok_s"] <= r["parallel_decode_tok_s_max"], r)
        lo = r["parallel_decode_tok_s_min"] / r["decode_tok_s_max"]
        hi = r["parallel_decode_tok_s_max"] / r["decode_tok_s_min"]
        check("--parallel paired ratio within the runs' bounds",
              lo * (1 - 1e-9) <= r["parallel_speedup_paired"] <= hi * (1 + 1e-9), r)
    check("--parallel progress", b"3 sequences" in p.stderr, p.stderr)
    check("no --parallel: no parallel fields", "parallel_decode_tok_s" not in results[0], results[0])

    # --depth: decode after a longer prompt, whose cache the attention then reads (and the report counts).
    p = subprocess.run([w, "bench", "--model", m, "-p", "0", "-n", "2", "-d", "40", "-r", "1", "--threads", "1",
                        "--bandwidth-mib", "4"], capture_output=True, timeout=300)
    check("--depth runs", p.returncode == 0, p.stderr)
    deep = json.loads(p.stdout) if p.returncode == 0 else {}
    check("--depth echoed", deep.get("decode_prompt_tokens") == 40 and deep.get("decode_mean_context") == 40 + 1.5,
          deep)
    if deep and report:
        check("--depth: the cache read grows with the context",
              deep["cache_bytes_per_token"] * report["decode_mean_context"]
              == report["cache_bytes_per_token"] * deep["decode_mean_context"], (deep, report))

    # --phases: each phase of the timed decode steps, the rest as "other"; together they are the decode's time, and
    # the weight passes' bytes are the weights a token reads.
    p = subprocess.run([w, "bench", "--model", m, "-p", "0", "-n", "3", "-r", "1", "--threads", "2", "--phases",
                        "--bandwidth-mib", "4"], capture_output=True, timeout=300)
    check("--phases runs", p.returncode == 0, p.stderr)
    rep = json.loads(p.stdout) if p.returncode == 0 else {}
    r = rep.get("results", [{}])[0]
    phases = r.get("decode_phases", {})
    names = ["attention_input", "cache_write", "attention", "attention_output", "norms", "router_shared", "routing",
             "experts", "swiglu", "downs", "combine", "dense_mlp", "lm_head", "other"]
    check("--phases: every phase", list(phases) == names, list(phases))
    if list(phases) == names:
        check("--phases: times not negative", all(v["ms_per_token"] >= 0 and v["share_percent"] >= 0
                                                  for v in phases.values()), phases)
        check("--phases: the passes took time", all(positive(phases[k]["ms_per_token"])
                                                    for k in ("attention_input", "attention", "lm_head")), phases)
        total = sum(v["ms_per_token"] for v in phases.values())
        check("--phases: together the decode's time", math.isclose(total, 1000 / r["decode_tok_s"], rel_tol=1e-6),
              (total, r["decode_tok_s"]))
        check("--phases: shares add up to 100", math.isclose(sum(v["share_percent"] for v in phases.values()), 100,
                                                             rel_tol=1e-6), phases)
        weights = sum(v.get("weight_bytes_per_token", 0) for v in phases.values())
        check("--phases: the passes read the weights of a token",
              math.isclose(weights, rep["weight_bytes_per_token"], rel_tol=0.02), (weights, rep["weight_bytes_per_token"]))
        check("--phases: rates where bytes are read",
              all(positive(v["gb_s"]) and math.isclose(v["gb_s"], v["weight_bytes_per_token"] / v["ms_per_token"] / 1e6,
                                                       rel_tol=1e-6)
                  for v in phases.values() if "weight_bytes_per_token" in v), phases)
    check("no --phases: no decode_phases", "decode_phases" not in results[0], results[0])

    def bad(name, args, *words, model=m):
        p = subprocess.run([w, "bench", "--model", model, "-r", "1", "--bandwidth-mib", "4"] + args,
                           capture_output=True, timeout=300)
        err = p.stderr.decode(errors="replace")
        ok = (p.returncode != 0 and all(x in err for x in words) and "Sanitizer" not in err
              and len(err.strip().splitlines()) <= 2 and not p.stdout)
        check(name, ok, (p.returncode, err, p.stdout))

    bad("negative -p", ["-p", "-1"], "--prompt", "-1")
    bad("negative -n", ["-n", "-2"], "--n-gen", "-2")
    bad("zero threads", ["--threads", "0"], "--threads", "\"0\"")
    bad("bad thread list", ["--threads", "1,x"], "--threads", "\"x\"")
    bad("empty thread in the list", ["--threads", "1,,2"], "--threads")
    bad("zero repetitions", ["-r", "0"], "--repetitions")
    bad("nothing to measure", ["-p", "0", "-n", "0"], "nothing to measure")
    bad("prompt beyond the model's context", ["-p", "1000000", "-n", "1"], "max_position_embeddings")
    bad("prompt beyond the limit", ["-p", "2000000"], "-p 2000000")
    bad("zero depth", ["-p", "0", "-n", "1", "-d", "0"], "--depth")
    bad("depth beyond the model's context", ["-p", "0", "-n", "1", "-d", "999999"], "-d 999999", "max_position_embeddings")
    bad("unwritable --json", ["-p", "1", "-n", "1", "--json", "/nonexistent-dir/x.json"], "--json", "cannot write")
    bad("missing model directory", [], "model directory not found", model=m + "-nope")
    bad("--parallel 0", ["--parallel", "0"], "--parallel")
    bad("--parallel beyond the limit", ["--parallel", "5000", "-n", "1"], "--parallel 5000")
    bad("--parallel without decode", ["-p", "4", "-n", "0", "--parallel", "2"], "--parallel 2", "-n")
    return finish()


def finish():
    print(f"{checks[0] - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

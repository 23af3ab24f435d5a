#!/usr/bin/env python3
"""`whale train` end to end on a small config: a run from --config with text data and --tokenizer is deterministic
for a seed (same bytes twice) and differs for another seed; a run stopped with --stop-at and continued with --resume
writes the same weights, optimizer state and log as one uninterrupted run; the checkpoint holds config.json without
quantization_config, the tokenizer files, F32 tensors, and `whale run` generates from it; train_log.jsonl has one
line per step with the documented fields.

Usage: train_cli_test.py --whale BIN --fixtures DIR   (DIR holds the generated v3 checkpoint: MoE with bias, MTP)
"""
import argparse
import atexit
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "reference"))
import tensor_io as tio  # noqa: E402


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}\n{r.stderr[-2000:]}")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--whale", required=True)
    ap.add_argument("--fixtures", required=True)
    args = ap.parse_args()
    model = os.path.join(args.fixtures, "v3")
    work = tempfile.mkdtemp(prefix="whale_train_cli_")
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # pass or fail, leave no checkpoints behind
    config = json.load(open(os.path.join(model, "config.json")))
    cfg = os.path.join(work, "config.json")
    json.dump(config, open(cfg, "w"))  # keeps quantization_config: training must drop it from what it writes
    data = os.path.join(work, "text.jsonl")
    words = "the cat sat on the mat and the dog ran to the park with a red ball".split()
    with open(data, "w") as f:
        for i in range(60):
            f.write(json.dumps({"text": " ".join(words[(i * 7 + j) % len(words)] for j in range(25))}) + "\n")

    base = [args.whale, "train", "--config", cfg, "--data", data, "--tokenizer", model, "--steps", "6",
            "--batch-size", "3", "--seq-len", "16", "--mtp-weight", "0.3", "--balance-alpha", "0.001",
            "--bias-update-rate", "0.01", "--eval-every", "3", "--lr", "3e-3", "--warmup", "2", "--threads", "2"]
    out = {k: os.path.join(work, k) for k in ("a", "b", "c", "d")}
    run(base + ["--out", out["a"], "--seed", "5"])
    run(base + ["--out", out["b"], "--seed", "5"])
    run(base + ["--out", out["c"], "--seed", "6"])
    run(base + ["--out", out["d"], "--seed", "5", "--stop-at", "4"])
    run(base + ["--out", out["d"], "--seed", "5", "--resume"])

    st = lambda k: os.path.join(out[k], "model.safetensors")
    problems = []
    if not filecmp.cmp(st("a"), st("b"), shallow=False):
        problems.append("two runs with the same seed wrote different weights")
    if filecmp.cmp(st("a"), st("c"), shallow=False):
        problems.append("runs with seeds 5 and 6 wrote the same weights")
    for f in ("model.safetensors", "optimizer.safetensors", "train_log.jsonl"):
        a, d = os.path.join(out["a"], f), os.path.join(out["d"], f)
        same = filecmp.cmp(a, d, shallow=False)
        if f == "train_log.jsonl":  # timings differ, and the stopped run also validates at its last step
            strip = lambda p: [{k: v for k, v in json.loads(l).items() if k not in ("seconds", "tokens_per_second", "gflops_per_second", "val_loss",
                                                         "val_mtp_accuracy")}
                               for l in open(p)]
            same = strip(a) == strip(d)
        if not same:
            problems.append(f"--stop-at 4 then --resume: {f} differs from the uninterrupted run")

    written = json.load(open(os.path.join(out["a"], "config.json")))
    if "quantization_config" in written:
        problems.append("the checkpoint's config.json keeps quantization_config")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if not os.path.exists(os.path.join(out["a"], f)):
            problems.append(f"the checkpoint lacks {f}")
    ck = tio.Checkpoint(out["a"])
    dtypes = {ck.dtype(n) for n in ck.where}
    if dtypes != {"F32"}:
        problems.append(f"checkpoint dtypes {dtypes}, expected F32 only")
    n = config["num_hidden_layers"]
    for copy, of in ((f"model.layers.{n}.embed_tokens.weight", "model.embed_tokens.weight"),
                     (f"model.layers.{n}.shared_head.head.weight", "lm_head.weight")):
        if not (ck.float64(copy) == ck.float64(of)).all():
            problems.append(f"{copy} is not a copy of {of}")

    log = [json.loads(l) for l in open(os.path.join(out["a"], "train_log.jsonl"))]
    if [l["step"] for l in log] != [1, 2, 3, 4, 5, 6]:
        problems.append(f"train_log.jsonl steps {[l['step'] for l in log]}")
    for key in ("loss", "main_loss", "mtp_loss", "mtp_accuracy", "balance_loss", "lr", "grad_norm", "maxvio",
                "maxvio_max", "tokens_per_second"):
        if key not in log[-1]:
            problems.append(f"train_log.jsonl lacks {key}")
    if "val_loss" not in log[2] or "val_loss" not in log[5]:
        problems.append("no val_loss at steps 3 and 6 (--eval-every 3)")

    gen = run([args.whale, "run", "--model", out["a"], "-p", "the cat", "-n", "8", "--temp", "0"])
    if "stopped" not in gen.stderr and not gen.stdout:
        problems.append("whale run produced nothing from the trained checkpoint")
    if problems:
        sys.exit("FAIL:\n  " + "\n  ".join(problems))
    print(f"OK: deterministic per seed, exact resume, checkpoint runs: {gen.stdout.strip()!r}")


if __name__ == "__main__":
    main()

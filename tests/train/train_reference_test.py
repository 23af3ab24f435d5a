#!/usr/bin/env python3
"""`whale train` against the PyTorch reference (scripts/reference/train_ref.py, float64 autograd written from
docs/training.md), on a small checkpoint of one flavour:

  grads   every parameter's gradient of micro-batch 0 (--dump-grads) within --rtol (max |whale - ref| / max |ref| per
          tensor) of autograd's; no router bias in the dump; one plain SGD step writes exactly W1 = W0 - lr * grad
          (f32) and leaves every e_score_correction_bias as it was.
  adamw   a --steps-step AdamW run (warmup, cosine, clipping, gradient accumulation, bias balancing): each step's loss
          within 1e-5 relative of the reference's, the final weights within --rtol; then `whale logits` on the written
          checkpoint matches the float64 forward of it (check_logits.py), so what training writes is what whale runs.

Usage: train_reference_test.py --whale BIN --model DIR --check grads|adamw [--mtp-weight L] [--balance-alpha A]
                               [--rtol R] [--work DIR]
"""
import argparse
import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "..", "scripts", "reference")
sys.path.insert(0, REF)
import tensor_io as tio  # noqa: E402

PY = sys.executable


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def tensors(path):
    f = tio.SafetensorsFile(path)
    return {n: f.float64(n) for n in f.names()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--whale", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--check", required=True, choices=["grads", "adamw"])
    ap.add_argument("--mtp-weight", default="0")
    ap.add_argument("--balance-alpha", default="0")
    ap.add_argument("--rtol", type=float, default=None)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="whale_train_ref_")
    if not args.work:  # a temporary directory goes when the test ends, pass or fail
        atexit.register(shutil.rmtree, work, ignore_errors=True)
    os.makedirs(work, exist_ok=True)
    vocab = json.load(open(os.path.join(args.model, "config.json")))["vocab_size"]

    data = os.path.join(work, "tokens.jsonl")
    run([PY, os.path.join(REF, "make_token_data.py"), "--out", data, "--vocab", str(vocab), "--docs", "40",
         "--min-len", "8", "--max-len", "30", "--seed", "1"])
    common = ["--data", data, "--seq-len", "8", "--batch-size", "2", "--data-order", "sequential",
              "--mtp-weight", args.mtp_weight, "--balance-alpha", args.balance_alpha]

    if args.check == "grads":
        rtol = args.rtol or 1e-4
        wg = os.path.join(work, "whale_grads.safetensors")
        rg = os.path.join(work, "ref_grads.safetensors")
        lr = 0.01
        for name, step_lr in (("w0", 0.0), ("w1", lr)):
            extra = ["--dump-grads", wg] if name == "w1" else []
            run([args.whale, "train", "--init", args.model, *common, "--optimizer", "sgd", "--lr", str(step_lr),
                 "--steps", "1", "--out", os.path.join(work, name), *extra])
        run([PY, os.path.join(REF, "train_ref.py"), "grads", "--model", args.model, *common, "--out", rg])
        r = subprocess.run([PY, os.path.join(REF, "train_ref.py"), "compare", "--whale", wg, "--ref", rg,
                            "--rtol", str(rtol)], capture_output=True, text=True)
        print("\n".join(r.stdout.splitlines()[:6]))
        if r.returncode != 0:
            sys.exit(f"FAIL: gradients differ from autograd: {r.stderr.strip()}")
        grads = tensors(wg)
        bias = [n for n in grads if n.endswith("e_score_correction_bias")]
        if bias:
            sys.exit(f"FAIL: the gradient dump holds router biases: {bias}")
        w0 = tensors(os.path.join(work, "w0", "model.safetensors"))
        w1 = tensors(os.path.join(work, "w1", "model.safetensors"))
        lr32 = np.float32(lr)
        checked = 0
        for n, g in grads.items():
            expect = w0[n].astype(np.float32) - lr32 * g.astype(np.float32)
            if not np.array_equal(w1[n].astype(np.float32), expect):
                bad = np.max(np.abs(w1[n] - expect))
                sys.exit(f"FAIL: {n}: the SGD step is not W0 - lr*grad (max |diff| {bad:.3e})")
            checked += 1
        for n in w0:
            if n.endswith("e_score_correction_bias") and not np.array_equal(w0[n], w1[n]):
                sys.exit(f"FAIL: {n} changed in an SGD step")
        print(f"OK: {len(grads)} gradients within {rtol:g} of autograd; SGD step exact on {checked} tensors; "
              f"{sum(n.endswith('e_score_correction_bias') for n in w0)} router biases without gradient")
        return

    # AdamW trajectory. PyTorch's own float32 run of this trajectory differs from its float64 run by up to ~3.4e-4
    # (Adam's m / sqrt(v) amplifies the rounding of near-zero gradients), so the weights get 1e-3.
    rtol = args.rtol or 1e-3
    opts = [*common, "--optimizer", "adamw", "--lr", "3e-3", "--steps", str(args.steps), "--warmup", "3",
            "--grad-accum", "2", "--clip", "1.0", "--weight-decay", "0.1", "--bias-update-rate", "0.01"]
    out = os.path.join(work, "adamw")
    run([args.whale, "train", "--init", args.model, *opts, "--out", out, "--eval-every", "0"])
    rw = os.path.join(work, "ref_adamw.safetensors")
    r = run([PY, os.path.join(REF, "train_ref.py"), "train", "--model", args.model, *opts, "--out", rw])
    ref_losses = [json.loads(l)["loss"] for l in r.stdout.splitlines() if l.startswith("{")]
    whale_losses = [json.loads(l)["loss"] for l in open(os.path.join(out, "train_log.jsonl"))]
    if len(ref_losses) != args.steps or len(whale_losses) != args.steps:
        sys.exit(f"FAIL: {len(whale_losses)} whale / {len(ref_losses)} reference steps, expected {args.steps}")
    for s, (a, b) in enumerate(zip(whale_losses, ref_losses)):
        if abs(a - b) > 1e-5 * abs(b):
            sys.exit(f"FAIL: step {s + 1}: loss {a:.8f}, reference {b:.8f}")
    r = subprocess.run([PY, os.path.join(REF, "train_ref.py"), "compare", "--whale",
                        os.path.join(out, "model.safetensors"), "--ref", rw, "--rtol", str(rtol)],
                       capture_output=True, text=True)
    print("\n".join(r.stdout.splitlines()[:6]))
    if r.returncode != 0:
        sys.exit(f"FAIL: weights after {args.steps} AdamW steps differ from PyTorch's: {r.stderr.strip()}")
    run([PY, os.path.join(REF, "check_logits.py"), "--whale", args.whale, "--model", out, "--chunks", "none",
         "--attention", "absorbed"])
    print(f"OK: {args.steps} AdamW steps: losses within 1e-5, weights within {rtol:g} of PyTorch; "
          f"the written checkpoint runs in whale with the reference's logits")


if __name__ == "__main__":
    main()

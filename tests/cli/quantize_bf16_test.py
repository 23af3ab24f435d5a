#!/usr/bin/env python3
"""`whale quantize --type bf16` against PyTorch's own f32 -> bfloat16 rounding.

1. The FP8 fixture (v3): every F8_E4M3 matrix must become BF16 with the bits torch gives for (e4m3 value x block
   scale, the product rounded to f32); the *_scale_inv tensors must be gone; BF16 and 1-D tensors must be copied byte
   for byte; config.json must lose quantization_config and say torch_dtype bfloat16; whale's logits on the result
   must match the float64 reference on the result's own weights (check_logits.py).
2. An F32 copy of v2-lite (as `whale train` writes), with rows of edge values in its first matrices (ties at the
   halfway point between two bf16 values, both parities, subnormals, +-0, +-inf, the largest finite f32, values that
   round up to infinity): every matrix must equal torch's conversion bit for bit, every 1-D tensor stay F32.

Usage: quantize_bf16_test.py --whale BIN --fixtures DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "..", "scripts", "reference")
sys.path.insert(0, REFERENCE)
import tensor_io as tio  # noqa: E402


def torch_bf16_bits(f32):
    """uint16 bits of torch's round-to-nearest-even conversion of a float32 array."""
    t = torch.from_numpy(np.ascontiguousarray(f32, dtype=np.float32)).to(torch.bfloat16)
    return t.view(torch.int16).numpy().view(np.uint16)


def convert(whale, model, out):
    proc = subprocess.run([whale, "quantize", "--model", model, "--out", out, "--type", "bf16", "--threads", "2"],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"whale quantize --type bf16 {model} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip()


def check_fp8(whale, fixtures, work, problems):
    src = os.path.join(fixtures, "v3")
    out = os.path.join(work, "v3_bf16")
    print(convert(whale, src, out))
    a, b = tio.Checkpoint(src), tio.Checkpoint(out)
    expected_names = {n for n in a.where if not n.endswith("_scale_inv")}
    if set(b.where) != expected_names:
        problems.append(f"v3: tensors {sorted(set(b.where) ^ expected_names)[:5]} differ from the input's (less "
                        f"scales)")
    converted = 0
    for name in sorted(expected_names & set(b.where)):
        fa, fb = a.files[a.where[name]], b.files[b.where[name]]
        if a.dtype(name) == "F8_E4M3":
            codes = fa.raw(name)
            scale = a.files[a.where[name + "_scale_inv"]].float64(name + "_scale_inv")
            # f32 product of the code's value and its block's scale, as documented; then torch's rounding.
            prod = (tio.e4m3_decode(codes).astype(np.float32) *
                    tio.expand_block_scale(scale, codes.shape).astype(np.float32))
            want = torch_bf16_bits(prod)
            if b.dtype(name) != "BF16" or b.shape(name) != a.shape(name):
                problems.append(f"v3: {name} is {b.dtype(name)} {b.shape(name)}, expected BF16 {a.shape(name)}")
            elif not np.array_equal(fb.raw(name), want):
                problems.append(f"v3: {name}: {int((fb.raw(name) != want).sum())} values differ from torch's bf16")
            converted += 1
        elif a.dtype(name) == "F32" and len(a.shape(name)) == 2:
            want = torch_bf16_bits(fa.raw(name))
            if b.dtype(name) != "BF16" or not np.array_equal(fb.raw(name), want):
                problems.append(f"v3: F32 matrix {name} not converted to torch's bf16")
            converted += 1
        else:
            if b.dtype(name) != a.dtype(name) or fb.raw(name).tobytes() != fa.raw(name).tobytes():
                problems.append(f"v3: {name} ({a.dtype(name)} {a.shape(name)}) was not copied as it was")
    if converted < 100:
        problems.append(f"v3: only {converted} matrices converted; the fixture should have over 100 FP8 weights")
    cfg = json.load(open(os.path.join(out, "config.json")))
    if "quantization_config" in cfg or cfg.get("torch_dtype") != "bfloat16":
        problems.append("v3: config.json still has quantization_config or lacks torch_dtype bfloat16")
    proc = subprocess.run([sys.executable, os.path.join(REFERENCE, "check_logits.py"), "--whale", whale, "--model",
                           out, "--tol", "2e-3", "--chunks", "none"], capture_output=True, text=True, timeout=600)
    print(proc.stdout.strip())
    if proc.returncode != 0:
        problems.append(f"v3 bf16: check_logits.py failed: {(proc.stdout + proc.stderr).strip()[-500:]}")


def edge_row(cols, kind):
    """float32 values of one edge-case kind, repeated to fill a row."""
    ulp_half = np.float32(2.0 ** -8)  # half a bf16 ulp at 1.0
    if kind == 0:  # exact ties: 1 + (k + 1/2) ulp, k even and odd -> round to even
        base = [np.float32(1.0 + (k + 0.5) * 2 * ulp_half) for k in range(8)]
        vals = base + [-v for v in base]
    elif kind == 1:  # just above and below the tie
        t = np.float32(1.0 + ulp_half)
        vals = [np.nextafter(t, np.float32(2)), np.nextafter(t, np.float32(0)), -np.nextafter(t, np.float32(2))]
    elif kind == 2:  # subnormals and zeros
        vals = [np.float32(1e-40), np.float32(-1e-40), np.float32(1e-45), np.float32(0.0), np.float32(-0.0),
                np.float32(1.1754942e-38)]
    else:  # infinities, the largest finite f32 (rounds up to inf), the largest bf16
        vals = [np.float32(np.inf), np.float32(-np.inf), np.finfo(np.float32).max, -np.finfo(np.float32).max,
                np.float32(3.3895314e38)]
    return np.resize(np.array(vals, dtype=np.float32), cols)


def check_f32(whale, fixtures, work, problems):
    src = os.path.join(fixtures, "v2-lite")
    f32_dir = os.path.join(work, "v2lite_f32")
    os.makedirs(f32_dir)
    a = tio.Checkpoint(src)
    arrays = {}
    edited = 0
    for name in sorted(a.where):
        arr = a.float64(name).astype(np.float32)
        if arr.ndim == 2 and edited < 4:
            for r in range(min(arr.shape[0], 8)):
                arr[r] = edge_row(arr.shape[1], (r + edited) % 4)
            edited += 1
        arrays[name] = arr
    entries = [(n, "F32", list(arrays[n].shape)) for n in sorted(arrays)]
    tio.write_safetensors(os.path.join(f32_dir, "model.safetensors"), entries, lambda n: arrays[n].tobytes())
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["torch_dtype"] = "float32"
    json.dump(cfg, open(os.path.join(f32_dir, "config.json"), "w"), indent=2)
    for f in os.listdir(src):
        if f.startswith("tokenizer"):
            shutil.copy(os.path.join(src, f), f32_dir)
    out = os.path.join(work, "v2lite_bf16")
    print(convert(whale, f32_dir, out))
    b = tio.Checkpoint(out)
    for name, arr in arrays.items():
        fb = b.files[b.where[name]]
        if arr.ndim == 2:
            want = torch_bf16_bits(arr)
            if b.dtype(name) != "BF16":
                problems.append(f"f32: {name} is {b.dtype(name)}, expected BF16")
            elif not np.array_equal(fb.raw(name), want):
                bad = np.argwhere(fb.raw(name) != want)[0]
                problems.append(f"f32: {name}: {int((fb.raw(name) != want).sum())} values differ from torch's bf16, "
                                f"first at {tuple(bad)}: f32 {arr[tuple(bad)]!r} -> {fb.raw(name)[tuple(bad)]:#06x}, "
                                f"torch {want[tuple(bad)]:#06x}")
        elif b.dtype(name) != "F32" or fb.raw(name).tobytes() != arr.tobytes():
            problems.append(f"f32: 1-D tensor {name} was not kept as F32")
    if edited < 4:
        problems.append("f32: fewer than 4 matrices got edge rows")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--whale", required=True)
    ap.add_argument("--fixtures", required=True)
    args = ap.parse_args()
    problems = []
    with tempfile.TemporaryDirectory(prefix="whale_bf16_") as work:
        check_fp8(args.whale, args.fixtures, work, problems)
        check_f32(args.whale, args.fixtures, work, problems)
    for p in problems:
        print("FAIL:", p)
    if problems:
        return 1
    print("quantize --type bf16: all tensors match torch's rounding")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""`whale quantize` against the numpy reference (scripts/reference/quantize_ref.py): every output tensor must have
the same name, dtype, shape and bytes; config.json must carry whale's quantization_config; the other files of the
model directory must be copied; every tensor must start at an offset aligned to its element size, q8/q4 block data
at 64 bytes. Also quantizes once more with a small --shard-size and checks that the sharded output (index + shards)
holds the same tensors, and quantizes a copy of the model whose first Linear weights are replaced by F32 edge cases
(exact .5 ties, f16-subnormal and underflowing scales, zero blocks, -0.0, negative extremes, +a/-a ties, values up to
4e5, magnitudes over 40 binades).

Usage: quantize_compare_test.py --whale BIN --model DIR --type q8|q4 [--work DIR]
"""
import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "reference"))
import quantize_ref  # noqa: E402
import tensor_io as tio  # noqa: E402


def tensors_of(model_dir):
    """name -> (dtype, shape, bytes, offset in the file's data buffer, file name)."""
    ckpt = tio.Checkpoint(model_dir)
    out = {}
    for name, fname in ckpt.where.items():
        st = ckpt.files[fname]
        info = st.info(name)
        b, e = info["data_offsets"]
        with open(st.path, "rb") as f:
            f.seek(st.data_start + b)
            raw = f.read(e - b)
        out[name] = (info["dtype"], tuple(info["shape"]), raw, st.data_start + b, fname)
    return out


def compare(got_dir, ref_dir, problems, label):
    got, ref = tensors_of(got_dir), tensors_of(ref_dir)
    for name in sorted(set(ref) - set(got)):
        problems.append(f"{label}: missing tensor {name}")
    for name in sorted(set(got) - set(ref)):
        problems.append(f"{label}: extra tensor {name}")
    differing = 0
    for name in sorted(set(got) & set(ref)):
        gd, gs, graw, goff, _ = got[name]
        rd, rs, rraw, _, _ = ref[name]
        if (gd, gs) != (rd, rs):
            problems.append(f"{label}: {name} is {gd} {list(gs)}, reference {rd} {list(rs)}")
        elif graw != rraw:
            differing += 1
            if differing <= 5:
                first = next(i for i in range(len(graw)) if graw[i] != rraw[i])
                problems.append(f"{label}: {name} differs from the reference (first at byte {first}: "
                                f"{graw[first]} vs {rraw[first]})")
        align = 64 if gd == "U8" else tio.DTYPES[gd][0]
        if goff % align:
            problems.append(f"{label}: {name} starts at file offset {goff}, not a multiple of {align}")
    if differing > 5:
        problems.append(f"{label}: ... {differing} tensors differ in all")
    return len(got)


def edge_values(rows, cols, seed):
    """float32 [rows, cols] of values that probe the rounding rules."""
    rng = np.random.default_rng(seed)
    # Magnitudes over 40 binades, random signs: many blocks get f16-subnormal or zero scales.
    w = (rng.choice([-1.0, 1.0], size=(rows, cols)) * 2.0 ** rng.uniform(-32, 8, size=(rows, 1))
         * rng.uniform(0, 1, size=(rows, cols))).astype(np.float32)
    s = np.float32(2.0 ** -7)  # exact in f16: absmax = 127 s (q8) or 7 s (q4) gives exactly s
    for r in range(min(rows, 48)):
        row = np.zeros(cols, dtype=np.float32)
        kind = r % 12
        halves = (np.arange(cols) % 15 - 7 + 0.5).astype(np.float32)  # -6.5 .. 7.5: exact ties
        if kind == 0:  # q8 ties: absmax 127 s, others k.5 s
            row = halves * s
            row[::32] = 127 * s
        elif kind == 1:  # q4 ties with absmax 7 s
            row = np.clip(halves, -6.5, 6.5) * s
            row[::32] = 7 * s
        elif kind == 2:  # q4 negative extreme -8 s with ties
            row = np.clip(halves, -7.5, 6.5) * s
            row[::32] = -8 * s
        elif kind == 3:  # +a and -a both present: ties to the positive scale
            row = rng.uniform(-1, 1, cols).astype(np.float32)
            row[::32], row[1::32] = 1.0, -1.0
        elif kind == 4:  # all zero, some -0.0
            row[::3] = -0.0
        elif kind == 5:  # q8 scale underflows f16 (absmax < ~3.8e-6), or sits in the subnormals
            row = (rng.uniform(-1, 1, cols) * np.where(np.arange(cols) < cols // 2, 3e-6, 2e-5)).astype(np.float32)
        elif kind == 6:  # large values (q4 scales overflow f16 from 7 * 65520 = 458640)
            row = (rng.uniform(-1, 1, cols) * 4e5).astype(np.float32)
        elif kind == 7:  # only negative values
            row = -rng.uniform(0, 1, cols).astype(np.float32)
        else:
            row = w[r]
        w[r] = row
    return w


def make_edge_model(src, dst, count=6):
    """A copy of `src` (one model.safetensors) whose first `count` Linear weights are F32 edge values."""
    ckpt = tio.Checkpoint(src)
    names = sorted(ckpt.where, key=quantize_ref.natural_key)
    linear = [n for n in names if quantize_ref.is_linear_weight(n, ckpt.shape(n))][:count]
    entries, data = [], {}
    for i, name in enumerate(names):
        if name in linear or (name.endswith("_scale_inv") and name[: -len("_scale_inv")] in linear):
            if name in linear:
                rows, cols = ckpt.shape(name)
                entries.append((name, "F32", (rows, cols)))
                data[name] = edge_values(rows, cols, i)
            continue
        entries.append((name, ckpt.dtype(name), ckpt.shape(name)))
        data[name] = ckpt.files[ckpt.where[name]].raw(name)
    os.makedirs(dst)
    shutil.copyfile(os.path.join(src, "config.json"), os.path.join(dst, "config.json"))
    tio.write_safetensors(os.path.join(dst, "model.safetensors"), entries, lambda n: data[n])


def run_whale(whale, model, out, qtype, extra=()):
    t0 = time.time()
    proc = subprocess.run([whale, "quantize", "--model", model, "--out", out, "--type", qtype, *extra],
                          capture_output=True, text=True, timeout=600)
    return proc, time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whale", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--type", required=True, choices=["q8", "q4"])
    ap.add_argument("--work", help="directory for the outputs (default: a temporary one, removed)")
    ap.add_argument("--logits-tol", type=float, default=None,
                    help="also run check_logits.py on whale's output with this tolerance (float64 reference on the "
                         "dequantized weights; the tolerance covers the kernels' int8 rounding of activations)")
    ap.add_argument("--long-logits-tol", type=float, default=None,
                    help="the same on 150 tokens fed whole and 70 at a time (the expanded prompt attention)")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="whale_quantize_")
    problems = []
    try:
        out = os.path.join(work, "whale")
        ref = os.path.join(work, "reference")
        sharded = os.path.join(work, "whale_sharded")
        edge, edge_out, edge_ref = (os.path.join(work, d) for d in ("edge", "edge_whale", "edge_reference"))
        for d in (out, ref, sharded, edge, edge_out, edge_ref):
            shutil.rmtree(d, ignore_errors=True)

        proc, seconds = run_whale(args.whale, args.model, out, args.type)
        if proc.returncode != 0:
            print(f"whale quantize failed ({proc.returncode}): {proc.stderr.strip()}")
            return 1
        print(f"whale quantize: {seconds:.2f} s: {proc.stdout.strip()}")
        t0 = time.time()
        quantize_ref.quantize_checkpoint(args.model, ref, args.type)
        print(f"quantize_ref.py: {time.time() - t0:.2f} s")

        n = compare(out, ref, problems, "single file")
        if not os.path.exists(os.path.join(out, "model.safetensors")):
            problems.append("a small model should be written as one model.safetensors")

        with open(os.path.join(out, "config.json")) as f:
            cfg = json.load(f)
        with open(os.path.join(args.model, "config.json")) as f:
            cfg_in = json.load(f)
        want_qc = {"quant_method": "whale", "format": args.type, "group_size": 32, "row_interleave": 16,
                   "scales": "inline"}
        if cfg.get("quantization_config") != want_qc:
            problems.append(f"config.json quantization_config is {cfg.get('quantization_config')}, want {want_qc}")
        cfg.pop("quantization_config", None)
        cfg_in.pop("quantization_config", None)
        if cfg != cfg_in:
            problems.append("config.json differs from the input's in more than quantization_config")
        for fname in sorted(os.listdir(args.model)):
            src = os.path.join(args.model, fname)
            if fname.endswith(".safetensors") or fname in ("config.json", "model.safetensors.index.json"):
                continue
            dst = os.path.join(out, fname)
            if not os.path.isfile(dst) or not filecmp.cmp(src, dst, shallow=False):
                problems.append(f"{fname} was not copied as it is")

        # The reference's reader (tensor_io.Checkpoint, used by deepseek_ref.py) dequantizes whale's output back to
        # the input weights within the format's error: per row, at most 1/254 (q8) or 0.3 (q4, whose scale search may
        # clip a block's extreme to 7 · 0.7 · max/7) of its largest value.
        qin, qout = tio.Checkpoint(args.model), tio.Checkpoint(out)
        bound = (1 / 254 if args.type == "q8" else 0.3) * 1.002
        for name in sorted(qin.where):
            if name.endswith("_scale_inv"):
                continue
            src, deq = qin.float64(name), qout.float64(name)
            if src.shape != deq.shape:
                problems.append(f"dequantized {name} has shape {deq.shape}, input {src.shape}")
            elif not quantize_ref.is_linear_weight(name, src.shape):
                if not np.array_equal(src, deq):
                    problems.append(f"{name} was not copied exactly")
            else:
                err = np.abs(deq - src).max(axis=1) / np.maximum(np.abs(src).max(axis=1), 1e-30)
                if err.max() > bound:
                    problems.append(f"dequantized {name} is off by {err.max():.3g} of its row's largest value")

        # The quantized model's forward pass against the float64 reference run on the dequantized weights: every
        # attention form and chunking of check_logits.py.
        if args.logits_tol is not None:
            check = os.path.join(os.path.dirname(os.path.abspath(quantize_ref.__file__)), "check_logits.py")
            proc = subprocess.run([sys.executable, check, "--whale", args.whale, "--model", out,
                                   "--tol", str(args.logits_tol)], capture_output=True, text=True, timeout=600)
            print(proc.stdout.strip())
            if proc.returncode != 0:
                problems.append(f"check_logits.py --tol {args.logits_tol} failed: {proc.stderr.strip()[-500:]}")
        if args.long_logits_tol is not None:
            check = os.path.join(os.path.dirname(os.path.abspath(quantize_ref.__file__)), "check_logits.py")
            tokens = ",".join(str((i * 37 + 11) % 250) for i in range(150))
            proc = subprocess.run([sys.executable, check, "--whale", args.whale, "--model", out, "--tokens", tokens,
                                   "--chunks", "none,70", "--tol", str(args.long_logits_tol)],
                                  capture_output=True, text=True, timeout=600)
            print(proc.stdout.strip())
            if proc.returncode != 0:
                problems.append(f"check_logits.py on 150 tokens, --tol {args.long_logits_tol} failed: "
                                f"{proc.stderr.strip()[-500:]}")

        # A short prompt's logits do not depend on its chunking, bit for bit (docs/engine.md): whale serve returns a
        # request's greedy text unchanged however the engine split its prompt. With q8/q4 weights a chunk of 5-63
        # queries once took W_UK through decoded f32 rows and one or a few queries through the in-place kernel.
        tokens = ",".join(str((i * 29 + 7) % 250) for i in range(40))
        outputs = {}
        for chunk in (None, 1, 3, 9, 16):
            cmd = [args.whale, "logits", "--model", out, "--tokens", tokens, "--threads", "2"]
            if chunk:
                cmd += ["--chunk", str(chunk)]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                problems.append(f"whale logits --chunk {chunk} failed: {proc.stderr.strip()[-300:]}")
            outputs[chunk] = proc.stdout
        for chunk, text in outputs.items():
            if text != outputs[None]:
                problems.append(f"40 tokens fed {chunk} at a time give other logits than one pass")

        # Sharded output: shards of at most ~1/3 of the model, an index, the same tensors.
        total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out) if f.endswith(".safetensors"))
        proc, _ = run_whale(args.whale, args.model, sharded, args.type, ["--shard-size", str(total // 3)])
        if proc.returncode != 0:
            problems.append(f"sharded run failed: {proc.stderr.strip()}")
        else:
            shards = sorted(f for f in os.listdir(sharded) if f.endswith(".safetensors"))
            if len(shards) < 3 or not os.path.exists(os.path.join(sharded, "model.safetensors.index.json")):
                problems.append(f"--shard-size {total // 3}: expected >= 3 shards and an index, got {shards}")
            compare(sharded, ref, problems, "sharded")

        # Edge cases: F32 weights built to hit every rounding rule.
        make_edge_model(args.model, edge)
        proc, _ = run_whale(args.whale, edge, edge_out, args.type)
        if proc.returncode != 0:
            problems.append(f"edge-case model: whale quantize failed: {proc.stderr.strip()}")
        else:
            quantize_ref.quantize_checkpoint(edge, edge_ref, args.type)
            compare(edge_out, edge_ref, problems, "edge cases")

        for p in problems:
            print(f"FAIL {p}")
        print(f"{args.type} {os.path.basename(os.path.normpath(args.model))}: {n} tensors, "
              f"{'FAILED' if problems else 'identical to the reference'}")
        return 1 if problems else 0
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

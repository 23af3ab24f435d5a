#!/usr/bin/python3
"""Reference of whale's q8 / q4 block quantization (numpy), written from the format definition in
src/whale/kernels/quant_format.h and the arithmetic rules in src/whale/kernels/quantize.h, not from whale's code.

Usage:
  /usr/bin/python3 scripts/reference/quantize_ref.py --model IN --out OUT --type q8|q4
writes the same tensors `whale quantize` writes (byte for byte; the file layout may differ): a Hugging Face model
directory with one model.safetensors, config.json with quantization_config {"quant_method": "whale", ...}, and the
input's other files.

As a module:
  data, scales = quantize_matrix(w_f32, "q8")     # uint8 [pr/16, pc/32, 16 B], float16 [pr/16, pc/32, 16]
  stored = pack_superblocks(data, scales, "q8")   # uint8 [pr/16, pc/64, 32 B + 64]: the tensor whale reads
  data, scales = unpack_superblocks(stored, "q8")
  w = dequantize_matrix(data, scales, rows, cols, "q8")   # float64 [rows, cols], exact

Format. A weight W [rows, cols] is padded with zeros to [pr, pc] (multiples of 16 and 64) and cut into blocks of 32
consecutive values of a row. Each block has one f16 scale s and codes q with w ~= s * q. The sixteen rows of a row
group store their blocks of the same columns together, a "group block" of 16 B bytes laid out line by line
(quantize_matrix), and a group's blocks 2j and 2j + 1 with their 32 scales after them form a "superblock": the group
blocks' 32 B bytes, then the scales of block 2j's rows 0..15 and of block 2j + 1's rows 0..15 as little-endian f16.
  q8: B = 32 bytes, byte j = q_j + 128, q in [-127, 127].
  q4: B = 16 bytes, byte j = (q_j + 8) | (q_{j+16} + 8) << 4, q in [-8, 7].
Arithmetic, all in float32, in this order, per block:
  absmax = max |w|, wmax = max w
  q8: s = f16(absmax / 127)
  q4: s = f16(absmax / 7) if wmax == absmax else f16(absmax / 8)   (a negative extreme becomes -8; s >= 0)
  f16() rounds to nearest, ties to even (numpy's float32 -> float16 conversion).
  q = clip(rint(w / f32(s)), lo, hi): float32 division, ROUND HALF TO EVEN (np.rint); q = 0 where s == 0.
  A non-finite value, or a scale that rounds to f16 infinity, is an error.
Which tensors: 2-D Linear weights (q/kv/o projections, dense and expert MLPs, embed_tokens, lm_head, MTP eh_proj and
shared_head.head) become NAME (U8, superblocks); the MoE router mlp.gate.weight, norms and biases are copied
as they are; *_scale_inv tensors (FP8 block scales, applied before quantizing) are dropped.
"""

import argparse
import json
import os
import re
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tensor_io as tio  # noqa: E402

BLOCK = 32
SUPER = 2  # blocks per superblock
ROW_GROUP = 16
BLOCK_BYTES = {"q8": 32, "q4": 16}
CODE_RANGE = {"q8": (-127, 127), "q4": (-8, 7)}

LINEAR_SUFFIXES = (".q_proj.weight", ".q_a_proj.weight", ".q_b_proj.weight", ".kv_a_proj_with_mqa.weight",
                   ".kv_b_proj.weight", ".o_proj.weight", ".gate_proj.weight", ".up_proj.weight", ".down_proj.weight",
                   "embed_tokens.weight", "lm_head.weight", ".eh_proj.weight", ".shared_head.head.weight")


def padded(n, m):
    return -(-n // m) * m


def is_linear_weight(name, shape):
    return len(shape) == 2 and name.endswith(LINEAR_SUFFIXES)


# q4 block scales tried, as f32 multiples of the default max|w|/7 (or /8 when the extreme is negative), in this order:
# the same list as kQ4ScaleFactors in src/whale/kernels/quantize.cc.
SCALE_FACTORS = (1.0, 0.975, 0.95, 0.925, 0.9, 0.875, 0.85, 0.825, 0.8, 0.775, 0.75, 0.725, 0.7,
                 1.025, 1.05, 1.075, 1.1, 1.125, 1.15)


def quantize_matrix(w, fmt):
    """float32 [rows, cols] -> (uint8 [pr/16, pc/32, 16 B], float16 [pr/16, pc/32, 16]).

    A group block (16 rows x 32 columns) is stored line by line: line L holds columns 4L..4L+3 of rows 0..15 (row
    major within the line, 4 bytes per row). q8: 8 lines of codes q + 128. q4: 4 lines of bytes whose low nibble is
    column j = 4L + c and high nibble column j + 16, codes q + 8."""
    if fmt not in BLOCK_BYTES:
        raise ValueError(f"format must be q8 or q4, not {fmt!r}")
    w = np.asarray(w)
    if w.dtype != np.float32:
        raise TypeError("quantize_matrix takes float32 values")
    rows, cols = w.shape
    if not np.isfinite(w).all():
        r, c = np.argwhere(~np.isfinite(w))[0]
        raise ValueError(f"row {r}, column {c} holds {w[r, c]}, which cannot be quantized")
    pr, pc = padded(rows, ROW_GROUP), padded(cols, SUPER * BLOCK)
    full = np.zeros((pr, pc), dtype=np.float32)
    full[:rows, :cols] = w
    blocks = full.reshape(pr, pc // BLOCK, BLOCK)
    absmax = np.abs(blocks).max(axis=-1)
    if fmt == "q8":
        s32 = absmax / np.float32(127)
    else:
        wmax = blocks.max(axis=-1)
        s32 = np.where(wmax == absmax, absmax / np.float32(7), absmax / np.float32(8)).astype(np.float32)
    with np.errstate(over="ignore"):
        s16 = s32.astype(np.float16)
    if np.isinf(s16).any():
        r, kb = np.argwhere(np.isinf(s16))[0]
        raise ValueError(f"row {r}, columns {kb * BLOCK}..{kb * BLOCK + BLOCK - 1}: largest magnitude "
                         f"{absmax[r, kb]} needs a block scale beyond the f16 range")
    lo, hi = CODE_RANGE[fmt]

    def codes_for(s16):
        sf = s16.astype(np.float32)[..., None]
        q = np.zeros(blocks.shape, dtype=np.float32)
        np.divide(blocks, sf, out=q, where=np.broadcast_to(sf != 0, blocks.shape))
        q = np.clip(np.rint(q), lo, hi).astype(np.int32)
        q[np.broadcast_to(sf == 0, q.shape)] = 0
        return q

    q = codes_for(s16)
    if fmt == "q4":
        # Scale search: the candidates s32 * f in SCALE_FACTORS order; a block keeps the first with the least squared
        # error sum_j (w_j - s q_j)^2, summed in double from j = 0 up (cumsum: the same order as the C++ loop).
        def error(s16, q):
            d = blocks.astype(np.float64) - s16.astype(np.float64)[..., None] * q
            return np.cumsum(d * d, axis=-1)[..., -1]

        best = error(s16, q)
        for f in SCALE_FACTORS[1:]:
            with np.errstate(over="ignore"):
                c16 = (s32 * np.float32(f)).astype(np.float32).astype(np.float16)
            cq = codes_for(c16)
            e = error(c16, cq)
            better = (e < best) & np.isfinite(c16)
            best = np.where(better, e, best)
            s16 = np.where(better, c16, s16)
            q = np.where(better[..., None], cq, q)
    if fmt == "q8":
        codes = (q + 128).astype(np.uint8)
    else:
        codes = ((q[..., :16] + 8) | ((q[..., 16:] + 8) << 4)).astype(np.uint8)
    nb, bb = pc // BLOCK, BLOCK_BYTES[fmt]
    # [group, row i, block, line L, column c of the line] -> [group, block, line, row, column]
    data = codes.reshape(pr // ROW_GROUP, ROW_GROUP, nb, bb // 4, 4).transpose(0, 2, 3, 1, 4)
    data = data.reshape(pr // ROW_GROUP, nb, ROW_GROUP * bb)
    scales = s16.reshape(pr // ROW_GROUP, ROW_GROUP, nb).transpose(0, 2, 1)
    return np.ascontiguousarray(data), np.ascontiguousarray(scales)


def pack_superblocks(data, scales, fmt):
    """(uint8 [G, nb, 16 B], float16 [G, nb, 16]) -> uint8 [G, nb/2, 2 * 16 B + 64]: per superblock two group blocks,
    then their 32 scales (little-endian f16)."""
    g, nb, gbb = data.shape
    if nb % SUPER or gbb != ROW_GROUP * BLOCK_BYTES[fmt] or scales.shape != (g, nb, ROW_GROUP):
        raise ValueError(f"{fmt} data {data.shape} / scales {scales.shape} cannot form superblocks")
    codes = data.reshape(g, nb // SUPER, SUPER * gbb)
    sbytes = np.ascontiguousarray(scales.astype("<f2")).view(np.uint8).reshape(g, nb // SUPER, SUPER * ROW_GROUP * 2)
    return np.ascontiguousarray(np.concatenate([codes, sbytes], axis=-1))


def unpack_superblocks(stored, fmt):
    """The inverse of pack_superblocks: uint8 [G, nb/2, 2 * 16 B + 64] -> (data, scales)."""
    stored = np.asarray(stored, dtype=np.uint8)
    g, ns, sbb = stored.shape
    gbb = ROW_GROUP * BLOCK_BYTES[fmt]
    if sbb != SUPER * gbb + SUPER * ROW_GROUP * 2:
        raise ValueError(f"{fmt} superblocks of {sbb} bytes (want {SUPER * gbb + SUPER * ROW_GROUP * 2})")
    data = stored[..., :SUPER * gbb].reshape(g, ns * SUPER, gbb)
    scales = np.ascontiguousarray(stored[..., SUPER * gbb:]).view("<f2").reshape(g, ns * SUPER, ROW_GROUP)
    return np.ascontiguousarray(data), scales.astype(np.float16)


def dequantize_matrix(data, scales, rows, cols, fmt):
    """(uint8 [pr/16, pc/32, 16 B], float16 [pr/16, pc/32, 16]) -> float64 [rows, cols] = s * q (exact)."""
    data = np.asarray(data, dtype=np.uint8)
    scales = np.asarray(scales)
    pr, pc = padded(rows, ROW_GROUP), padded(cols, SUPER * BLOCK)
    nb, bb = pc // BLOCK, BLOCK_BYTES[fmt]
    want, want_s = (pr // ROW_GROUP, nb, ROW_GROUP * bb), (pr // ROW_GROUP, nb, ROW_GROUP)
    if data.shape != want or scales.shape != want_s:
        raise ValueError(f"{fmt} data {data.shape} / scales {scales.shape} do not fit [{rows}, {cols}] "
                         f"(want {want} / {want_s})")
    d = data.reshape(pr // ROW_GROUP, nb, bb // 4, ROW_GROUP, 4).transpose(0, 3, 1, 2, 4)
    d = d.reshape(pr, nb, bb).astype(np.int64)
    if fmt == "q8":
        q = d - 128
    else:
        q = np.concatenate([(d & 0xF) - 8, (d >> 4) - 8], axis=-1)
    s = scales.astype(np.float64).transpose(0, 2, 1).reshape(pr, nb, 1)
    return (q * s).reshape(pr, pc)[:rows, :cols]


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------------------------

def natural_key(name):
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name) if p != ""]


def source_f32(ckpt, name, block):
    """The Linear weight `name` as float32: BF16/F16/F32 exactly, FP8 codes times their block scale rounded once."""
    dtype = ckpt.dtype(name)
    st = ckpt.files[ckpt.where[name]]
    if dtype in ("F32", "F16", "BF16"):
        return st.float64(name).astype(np.float32)  # exact: every such value is a float32
    if dtype == "F8_E4M3":
        sname = name + "_scale_inv"
        if sname not in ckpt.where:
            raise ValueError(f"{name}: FP8 tensor without {sname}")
        scale = ckpt.files[ckpt.where[sname]].float64(sname)
        codes = st.float64(name)
        rows, cols = codes.shape
        want = (-(-rows // block[0]), -(-cols // block[1]))
        if tuple(scale.shape) != want:
            raise ValueError(f"{sname}: shape {tuple(scale.shape)}, expected {want}")
        full = np.repeat(np.repeat(scale, block[0], axis=0), block[1], axis=1)[:rows, :cols]
        return (codes * full).astype(np.float32)  # exact product in float64, then one rounding
    raise ValueError(f"{name}: dtype {dtype} cannot be quantized")


def quantize_checkpoint(model_dir, out_dir, fmt):
    ckpt = tio.Checkpoint(model_dir)
    cfg = ckpt.config
    qc = cfg.get("quantization_config") or {}
    if qc.get("quant_method") == "whale":
        raise ValueError(f"{model_dir} is already whale-quantized")
    block = tuple(qc.get("weight_block_size", (128, 128)))
    if os.path.exists(out_dir) and os.listdir(out_dir):
        raise ValueError(f"{out_dir} exists and is not empty")
    os.makedirs(out_dir, exist_ok=True)

    entries, producers = [], {}
    for name in sorted(ckpt.where, key=natural_key):
        if name.endswith("_scale_inv"):
            continue
        dtype, shape = ckpt.dtype(name), ckpt.shape(name)
        if is_linear_weight(name, shape):
            rows, cols = shape
            pr, pc = padded(rows, ROW_GROUP), padded(cols, SUPER * BLOCK)
            entries.append((name, "U8", (pr // ROW_GROUP, pc // (SUPER * BLOCK),
                                         SUPER * (ROW_GROUP * BLOCK_BYTES[fmt] + ROW_GROUP * 2))))
            producers[name] = ("quantize", name)
        else:
            if dtype == "F8_E4M3":
                raise ValueError(f"{name}: F8_E4M3 tensor that is not a Linear weight")
            entries.append((name, dtype, shape))
            producers[name] = ("copy", name)

    def produce(out_name):
        kind, src = producers[out_name]
        if kind == "copy":
            return ckpt.files[ckpt.where[src]].raw(src)
        return pack_superblocks(*quantize_matrix(source_f32(ckpt, src, block), fmt), fmt)

    tio.write_safetensors(os.path.join(out_dir, "model.safetensors"), entries, produce, {"format": "pt"})

    cfg = dict(cfg)
    cfg["quantization_config"] = {"quant_method": "whale", "format": fmt, "group_size": BLOCK,
                                  "row_interleave": ROW_GROUP, "scales": "inline"}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    for fname in sorted(os.listdir(model_dir)):
        path = os.path.join(model_dir, fname)
        if (os.path.isfile(path) and fname not in ("config.json", "model.safetensors.index.json")
                and not fname.endswith(".safetensors")):
            shutil.copyfile(path, os.path.join(out_dir, fname))
    return entries


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="input Hugging Face model directory")
    ap.add_argument("--out", required=True, help="output directory (new or empty)")
    ap.add_argument("--type", required=True, choices=sorted(BLOCK_BYTES), help="q8 or q4")
    args = ap.parse_args()
    entries = quantize_checkpoint(args.model, args.out, args.type)
    print(f"wrote {len(entries)} tensors to {args.out}")


if __name__ == "__main__":
    main()

"""Minimal safetensors reader/writer and the number formats the DeepSeek checkpoints use.

Written from the format description (docs: deepseek-spec.md §3.1, §3.3); no dependency beyond numpy.

safetensors file = 8-byte little-endian u64 N, N bytes of UTF-8 JSON header
  {name: {"dtype": str, "shape": [int...], "data_offsets": [begin, end]}, "__metadata__": {str: str}},
then the byte buffer (offsets are relative to the start of the buffer). Tensors are little-endian, C-contiguous.

Number formats:
  BF16      upper 16 bits of an IEEE f32; f32 -> bf16 rounds to nearest, ties to even.
  F16       IEEE half (numpy float16).
  F8_E4M3   float8_e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa bits, no infinities,
            NaN = 0x7F / 0xFF, max finite 448.
  U8        in a whale-quantized checkpoint (config.json quantization_config.quant_method "whale"), the q8 / q4
            blocks of a Linear weight NAME, its f16 scales inside (superblocks); Checkpoint.float64 dequantizes them
            (quantize_ref.py).
"""

import json
import os
import re
import struct

import numpy as np

# dtype string -> (bytes per element, numpy storage dtype)
DTYPES = {
    "F64": (8, np.dtype("<f8")),
    "F32": (4, np.dtype("<f4")),
    "F16": (2, np.dtype("<f2")),
    "BF16": (2, np.dtype("<u2")),
    "F8_E4M3": (1, np.dtype("u1")),
    "U8": (1, np.dtype("u1")),  # whale's q8 / q4 block data (quantize_ref.py)
}


# ----------------------------------------------------------------------------------------------------------------
# BF16
# ----------------------------------------------------------------------------------------------------------------

def f32_to_bf16_bits(x):
    """float32 array -> uint16 bf16 bit patterns, round to nearest, ties to even. NaN -> 0x7FC0 (sign kept)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32).copy()
    nan = np.isnan(x)
    # add 0x7FFF plus the lsb of the kept part: rounds to nearest, ties to even (overflow carries into exponent,
    # which is the correct rounding up to the next binade or to infinity)
    u += np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))
    u >>= np.uint32(16)
    out = u.astype(np.uint16)
    if nan.any():
        sign = (x.view(np.uint32)[nan] >> np.uint32(16)) & np.uint32(0x8000)
        out[nan] = (sign | np.uint32(0x7FC0)).astype(np.uint16)
    return out


def bf16_bits_to_f32(b):
    """uint16 bf16 bit patterns -> float32 (exact)."""
    b = np.ascontiguousarray(b, dtype=np.uint16)
    return (b.astype(np.uint32) << np.uint32(16)).view(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# FP8 E4M3 (float8_e4m3fn)
# ----------------------------------------------------------------------------------------------------------------

def _e4m3_decode_one(code):
    s = (code >> 7) & 1
    e = (code >> 3) & 0xF
    m = code & 0x7
    if (code & 0x7F) == 0x7F:
        return float("nan")
    if e == 0:
        v = 2.0 ** -6 * (m / 8.0)
    else:
        v = 2.0 ** (e - 7) * (1.0 + m / 8.0)
    return -v if s else v


# decode table: index = byte, value = float64 (exact; every e4m3 value is exactly representable)
E4M3_TABLE = np.array([_e4m3_decode_one(c) for c in range(256)], dtype=np.float64)
E4M3_MAX = 448.0
# non-negative finite values in code order 0x00..0x7E; strictly increasing in the code
_E4M3_POS = E4M3_TABLE[:0x7F].copy()
assert np.all(np.diff(_E4M3_POS) > 0)


def e4m3_decode(codes):
    """uint8 array -> float64 array."""
    return E4M3_TABLE[np.asarray(codes, dtype=np.uint8)]


def f32_to_e4m3(x):
    """float array -> uint8 e4m3fn codes; round to nearest, ties to even mantissa; saturates at +-448.

    NaN -> 0x7F. Negative values that round to zero keep the sign bit (0x80 = -0.0)."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    nan = np.isnan(a)
    a = np.where(nan, 0.0, np.minimum(a, E4M3_MAX))
    hi = np.searchsorted(_E4M3_POS, a, side="left")  # _POS[hi-1] < a <= _POS[hi]
    hi = np.minimum(hi, 0x7E)
    lo = np.maximum(hi - 1, 0)
    d_lo = a - _E4M3_POS[lo]  # exact in float64 for float32 inputs
    d_hi = _E4M3_POS[hi] - a
    pick_hi = (d_hi < d_lo) | ((d_hi == d_lo) & ((hi & 1) == 0))
    code = np.where(pick_hi, hi, lo).astype(np.uint8)
    code |= np.where(np.signbit(x), 0x80, 0).astype(np.uint8)
    code[nan] = 0x7F
    return code


# ----------------------------------------------------------------------------------------------------------------
# safetensors writer
# ----------------------------------------------------------------------------------------------------------------

def nbytes_of(dtype, shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n * DTYPES[dtype][0]


def build_header(entries, metadata=None):
    """entries: list of (name, dtype, shape) in data-buffer order. Returns the padded header bytes and total size
    of the data buffer."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for name, dtype, shape in entries:
        if dtype not in DTYPES:
            raise ValueError(f"unsupported dtype {dtype}")
        n = nbytes_of(dtype, shape)
        header[name] = {"dtype": dtype, "shape": [int(d) for d in shape], "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((-len(raw)) % 8)  # data buffer starts 8-byte aligned
    return raw, offset


def write_safetensors(path, entries, produce, metadata=None, header_order=None):
    """Write a safetensors file.

    entries: list of (name, dtype, shape) in data-buffer order.
    produce: callable(name) -> bytes-like / numpy array with exactly the tensor's bytes; called in buffer order,
             so large files can be streamed.
    header_order: optional list of names giving the key order of the JSON header (JSON objects are unordered;
             a scrambled key order tests that readers do not rely on it). Must be a permutation of the names.
    """
    hdr_bytes, total = build_header(entries, metadata)
    if header_order is not None:
        hdr = json.loads(hdr_bytes)
        meta = hdr.pop("__metadata__", None)
        assert sorted(header_order) == sorted(hdr.keys())
        ordered = {}
        if meta is not None:
            ordered["__metadata__"] = meta
        for n in header_order:
            ordered[n] = hdr[n]
        hdr_bytes = json.dumps(ordered, separators=(",", ":")).encode("utf-8")
        hdr_bytes += b" " * ((-len(hdr_bytes)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr_bytes)))
        f.write(hdr_bytes)
        for name, dtype, shape in entries:
            data = produce(name)
            if isinstance(data, np.ndarray):
                data = np.ascontiguousarray(data).tobytes()
            n = nbytes_of(dtype, shape)
            if len(data) != n:
                raise ValueError(f"{name}: produced {len(data)} bytes, expected {n}")
            f.write(data)
    return 8 + len(hdr_bytes) + total


# ----------------------------------------------------------------------------------------------------------------
# safetensors reader
# ----------------------------------------------------------------------------------------------------------------

class SafetensorsFile:
    """Lazy reader of one .safetensors file."""

    def __init__(self, path):
        self.path = path
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise ValueError(f"{path}: truncated header length")
            (n,) = struct.unpack("<Q", raw)
            if n > size - 8:
                raise ValueError(f"{path}: header length {n} exceeds file size {size}")
            header = json.loads(f.read(n).decode("utf-8"))
        self.data_start = 8 + n
        self.metadata = header.pop("__metadata__", {}) or {}
        self.tensors = header
        buf_len = size - self.data_start
        for name, info in header.items():
            b, e = info["data_offsets"]
            if info["dtype"] not in DTYPES:
                raise ValueError(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
            if not (0 <= b <= e <= buf_len) or e - b != nbytes_of(info["dtype"], info["shape"]):
                raise ValueError(f"{path}: tensor {name}: bad data_offsets {info['data_offsets']}")

    def names(self):
        return list(self.tensors.keys())

    def info(self, name):
        return self.tensors[name]

    def raw(self, name):
        """numpy array of the stored elements (BF16 as uint16 bits, F8_E4M3 as uint8 codes), shaped."""
        info = self.tensors[name]
        b, e = info["data_offsets"]
        _, npdt = DTYPES[info["dtype"]]
        count = (e - b) // npdt.itemsize
        arr = np.fromfile(self.path, dtype=npdt, count=count, offset=self.data_start + b)
        return arr.reshape(info["shape"])

    def float64(self, name):
        """Decoded values as a float64 numpy array (no FP8 block scaling applied here)."""
        dtype = self.tensors[name]["dtype"]
        a = self.raw(name)
        if dtype == "BF16":
            return bf16_bits_to_f32(a).astype(np.float64).reshape(a.shape)
        if dtype == "F8_E4M3":
            return e4m3_decode(a)
        return a.astype(np.float64)


class Checkpoint:
    """A Hugging Face model directory: config.json + model.safetensors or model.safetensors.index.json + shards."""

    def __init__(self, model_dir):
        self.dir = model_dir
        with open(os.path.join(model_dir, "config.json")) as f:
            self.config = json.load(f)
        index = os.path.join(model_dir, "model.safetensors.index.json")
        single = os.path.join(model_dir, "model.safetensors")
        self.files = {}
        self.where = {}
        if os.path.exists(index):
            with open(index) as f:
                wm = json.load(f)["weight_map"]
            for fname in sorted(set(wm.values())):
                self.files[fname] = SafetensorsFile(os.path.join(model_dir, fname))
            for name, fname in wm.items():
                if name not in self.files[fname].tensors:
                    raise ValueError(f"index maps {name} to {fname}, which does not contain it")
                self.where[name] = fname
        elif os.path.exists(single):
            self.files["model.safetensors"] = SafetensorsFile(single)
            for name in self.files["model.safetensors"].names():
                self.where[name] = "model.safetensors"
        else:
            raise FileNotFoundError(f"{model_dir}: neither model.safetensors.index.json nor model.safetensors")

    def has(self, name):
        return name in self.where

    def dtype(self, name):
        return self.files[self.where[name]].info(name)["dtype"]

    def shape(self, name):
        return tuple(self.files[self.where[name]].info(name)["shape"])

    def float64(self, name):
        """Decoded float64 numpy array; FP8 weights are multiplied by their block scale (W = fp8 * scale_inv);
        whale q8 / q4 weights (U8 superblocks, scales inside) are dequantized to s * q, shape [rows, cols] from config.json."""
        if name not in self.where:
            raise KeyError(f"tensor {name} not in checkpoint {self.dir}")
        if self.dtype(name) == "U8":
            return self.dequantize_whale(name)
        arr = self.files[self.where[name]].float64(name)
        if self.dtype(name) == "F8_E4M3":
            if not name.endswith(".weight"):
                raise ValueError(f"{name}: FP8 tensor whose name does not end in .weight")
            sname = name + "_scale_inv"
            if sname not in self.where:
                raise ValueError(f"{name}: FP8 tensor without {sname}")
            scale = self.files[self.where[sname]].float64(sname)
            arr = arr * expand_block_scale(scale, arr.shape)
        return arr


    def dequantize_whale(self, name):
        import quantize_ref  # here, not at the top: quantize_ref imports this module
        qc = self.config.get("quantization_config") or {}
        if qc.get("quant_method") != "whale":
            raise ValueError(f"{name}: U8 tensor but config.json has no whale quantization_config")
        fmt = qc.get("format")
        if qc.get("scales") != "inline":
            raise ValueError(f"{name}: whale {fmt} checkpoint without \"scales\": \"inline\" (an older layout)")
        rows, cols = self.logical_shape(name)
        shape = self.shape(name)
        stored = self.files[self.where[name]].raw(name).reshape(shape)
        data, scales = quantize_ref.unpack_superblocks(stored, fmt)
        return quantize_ref.dequantize_matrix(data, scales, rows, cols, fmt)

    def logical_shape(self, name):
        """[rows, cols] of a whale-quantized Linear weight, from config.json (the stored shape is padded)."""
        c = self.config
        D, H = c["hidden_size"], c["num_attention_heads"]
        dn, dr, dv = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
        rq, rkv, V = c.get("q_lora_rank") or 0, c["kv_lora_rank"], c["vocab_size"]
        m = re.match(r"model\.layers\.(\d+)\.", name)
        layer = int(m.group(1)) if m else -1
        moe = (c.get("n_routed_experts") or 0) > 0 and (
            layer >= c["num_hidden_layers"] or
            (layer >= c.get("first_k_dense_replace", 0) and layer % c.get("moe_layer_freq", 1) == 0))
        inter = c["intermediate_size"]
        if ".shared_experts." in name:
            inter = c["moe_intermediate_size"] * c["n_shared_experts"]
        elif ".experts." in name or (moe and ".mlp." in name):
            inter = c["moe_intermediate_size"]
        table = {
            "embed_tokens.weight": (V, D), "lm_head.weight": (V, D), "shared_head.head.weight": (V, D),
            "eh_proj.weight": (D, 2 * D), "q_proj.weight": (H * (dn + dr), D), "q_a_proj.weight": (rq, D),
            "q_b_proj.weight": (H * (dn + dr), rq), "kv_a_proj_with_mqa.weight": (rkv + dr, D),
            "kv_b_proj.weight": (H * (dn + dv), rkv), "o_proj.weight": (D, H * dv),
            "gate_proj.weight": (inter, D), "up_proj.weight": (inter, D), "down_proj.weight": (D, inter),
            "gate.weight": (c.get("n_routed_experts") or 0, D),
        }
        for suffix, shape in table.items():
            if name == suffix or name.endswith("." + suffix):
                return shape
        raise ValueError(f"{name}: not a Linear weight whose shape config.json defines")


def expand_block_scale(scale, shape, block=128):
    """[ceil(R/b), ceil(C/b)] scale grid -> [R, C] per-element scale (partial edge blocks use their block's value)."""
    rows, cols = shape
    want = (-(-rows // block), -(-cols // block))
    if tuple(scale.shape) != want:
        raise ValueError(f"scale shape {tuple(scale.shape)} does not match weight {tuple(shape)} (want {want})")
    return np.repeat(np.repeat(scale, block, axis=0), block, axis=1)[:rows, :cols]

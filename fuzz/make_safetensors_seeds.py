#!/usr/bin/python3
"""Writes the seed corpus of safetensors_header_fuzz: a few tiny valid and invalid safetensors files.

Run with Debian's python3 from the repository root:  /usr/bin/python3 fuzz/make_safetensors_seeds.py
Standard library only; every file is well under 4 KB.
"""
import json
import pathlib
import struct

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "safetensors"


def safetensors(header, data=b"", pad=False, declared_len=None):
    """8-byte little-endian header length, the JSON header (optionally space-padded to 8 bytes), the data."""
    text = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    n = len(text) if declared_len is None else declared_len
    return struct.pack("<Q", n) + text + data


def tensor(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def all_dtypes():
    """One single-element tensor of every safetensors dtype, packed back to back."""
    sizes = [("BOOL", 1), ("U8", 1), ("I8", 1), ("I16", 2), ("U16", 2), ("I32", 4), ("U32", 4), ("I64", 8),
             ("U64", 8), ("F16", 2), ("BF16", 2), ("F32", 4), ("F64", 8), ("F8_E4M3", 1), ("F8_E5M2", 1)]
    header, offset = {}, 0
    for dtype, size in sizes:
        header[dtype.lower()] = tensor(dtype, [1], offset, offset + size)
        offset += size
    return safetensors(header, bytes(offset))


SEEDS = {
    # Valid files.
    "valid_empty": safetensors({}),
    "valid_two_tensors": safetensors(
        {"a": tensor("F32", [2, 3], 0, 24), "b": tensor("BF16", [4], 24, 32)}, bytes(range(32))),
    "valid_metadata_padded": safetensors(
        {"__metadata__": {"format": "pt"}, "w": tensor("F8_E4M3", [2, 2], 0, 4),
         "w_scale_inv": tensor("F32", [1, 1], 4, 8)}, bytes(8), pad=True),
    "valid_zero_size_and_scalar": safetensors(
        {"empty": tensor("F16", [0, 7], 4, 4), "scalar": tensor("F32", [], 0, 4)}, bytes(4)),
    "valid_all_dtypes": all_dtypes(),
    # Invalid files, one defect each.
    "bad_short": b"\x05\x00\x00",
    "bad_header_past_eof": safetensors(b"{}", declared_len=64),
    "bad_absurd_length": struct.pack("<Q", 1 << 62) + b"{}",
    "bad_json": safetensors(b'{"a":{"dtype":"F32",'),
    "bad_not_object": safetensors(b"[1,2,3]"),
    "bad_dtype": safetensors({"w": tensor("F4", [2], 0, 1)}, bytes(1)),
    "bad_negative_shape": safetensors({"w": tensor("U8", [-1], 0, 1)}, bytes(1)),
    "bad_reversed_offsets": safetensors({"w": tensor("U8", [0], 8, 4)}, bytes(8)),
    "bad_truncated_data": safetensors({"w": tensor("F32", [4], 0, 16)}, bytes(10)),
    "bad_size_mismatch": safetensors({"w": tensor("F32", [2, 3], 0, 20)}, bytes(24)),
    "bad_overlap": safetensors({"a": tensor("U8", [8], 0, 8), "b": tensor("U8", [8], 4, 12)}, bytes(12)),
    "bad_shape_overflow": safetensors({"w": tensor("F32", [1 << 32, 1 << 32], 0, 0)}),
    "bad_metadata": safetensors({"__metadata__": {"format": 3}}),
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS.items():
        assert len(data) < 4096, name
        (OUT / name).write_bytes(data)
    print(f"wrote {len(SEEDS)} seeds to {OUT}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Bad checkpoints and bad arguments: each must give one clear line on stderr that names the file, tensor or field at
fault, exit status 1, and no crash or sanitizer report.

Usage: bad_input_test.py --whale BIN --fixtures DIR   (DIR holds the generated v3 and v2-lite checkpoints)
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    return header, raw[8 + n:]


def write_safetensors(path, header, data):
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def edit_header(path, fn):
    header, data = read_safetensors(path)
    fn(header)
    write_safetensors(path, header, data)


def edit_json(path, fn):
    with open(path) as f:
        obj = json.load(f)
    fn(obj)
    with open(path, "w") as f:
        json.dump(obj, f)


def first_tensor(header, suffix, dtype=None):
    for name, entry in sorted(header.items()):
        if name != "__metadata__" and name.endswith(suffix) and (dtype is None or entry["dtype"] == dtype):
            return name
    raise KeyError(suffix)


def shard_of(model, tensor):
    with open(os.path.join(model, "model.safetensors.index.json")) as f:
        return json.load(f)["weight_map"][tensor]


class Case:
    def __init__(self, name, base, mutate, expect, args=None):
        self.name, self.base, self.mutate, self.expect, self.args = name, base, mutate, expect, args


def truncate_shard(model):
    path = os.path.join(model, "model-00002-of-00003.safetensors")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    return ["model-00002-of-00003.safetensors", "truncated"]


def offsets_out_of_range(model):
    path = os.path.join(model, "model-00001-of-00003.safetensors")
    header, _ = read_safetensors(path)
    name = first_tensor(header, ".weight")
    size = os.path.getsize(path)

    def fn(h):
        h[name]["data_offsets"] = [h[name]["data_offsets"][0], size * 2]
    edit_header(path, fn)
    return ["model-00001-of-00003.safetensors", name, "data_offsets"]


def missing_tensor(model):
    name = "model.layers.1.mlp.experts.3.up_proj.weight"
    edit_header(os.path.join(model, "model.safetensors"), lambda h: h.pop(name))
    return ["model.safetensors", name]


def wrong_shape(model):
    name = "model.layers.0.self_attn.kv_a_proj_with_mqa.weight"

    def fn(h):
        h[name]["shape"] = list(reversed(h[name]["shape"]))
    edit_header(os.path.join(model, "model.safetensors"), fn)
    return ["model.safetensors", name, "shape"]


def unknown_model_type(model):
    edit_json(os.path.join(model, "config.json"), lambda c: c.update(model_type="llama"))
    return ["config.json", "model_type", "llama"]


def unsupported_dtype(model):
    name = "model.layers.2.self_attn.o_proj.weight"

    def fn(h):
        h[name]["dtype"] = "I16"  # same element size as BF16, so only the dtype is wrong
    edit_header(os.path.join(model, "model.safetensors"), fn)
    return ["model.safetensors", name, "I16"]


def missing_index_entry(model):
    name = "model.layers.1.self_attn.kv_b_proj.weight"
    edit_json(os.path.join(model, "model.safetensors.index.json"), lambda j: j["weight_map"].pop(name))
    return ["model.safetensors.index.json", name]


def missing_config_field(model):
    edit_json(os.path.join(model, "config.json"), lambda c: c.pop("kv_lora_rank"))
    return ["config.json", "kv_lora_rank", "missing"]


def config_not_json(model):
    with open(os.path.join(model, "config.json"), "w") as f:
        f.write("{\"model_type\": ")
    return ["config.json", "JSON"]


def header_not_json(model):
    path = os.path.join(model, "model.safetensors")
    _, data = read_safetensors(path)
    bad = b"{not json at all}"
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(bad)) + bad + data)
    return ["model.safetensors", "JSON"]


def missing_scale(model):
    name = "model.layers.0.self_attn.o_proj.weight_scale_inv"
    shard = os.path.join(model, shard_of(model, name))
    edit_header(shard, lambda h: h.pop(name))
    edit_json(os.path.join(model, "model.safetensors.index.json"), lambda j: j["weight_map"].pop(name))
    return ["model.layers.0.self_attn.o_proj.weight_scale_inv"]


def wrong_scale_shape(model):
    name = "model.layers.1.self_attn.kv_a_proj_with_mqa.weight_scale_inv"

    def fn(h):
        # Same byte count, other shape: [2, 2] -> [4, 1].
        h[name]["shape"] = [h[name]["shape"][0] * h[name]["shape"][1], 1]
    edit_header(os.path.join(model, shard_of(model, name)), fn)
    return [name, "shape"]


def missing_shard(model):
    os.remove(os.path.join(model, "model-00003-of-00003.safetensors"))
    return ["model-00003-of-00003.safetensors", "does not exist"]


def no_weights(model):
    os.remove(os.path.join(model, "model.safetensors"))
    return ["model.safetensors"]


def missing_dir(model):
    shutil.rmtree(model)
    return ["model directory not found"]


CASES = [
    Case("truncated shard", "v3", truncate_shard, None),
    Case("header offsets out of range", "v3", offsets_out_of_range, None),
    Case("missing tensor", "v2-lite", missing_tensor, None),
    Case("wrong shape", "v2-lite", wrong_shape, None),
    Case("unknown model_type", "v2-lite", unknown_model_type, None),
    Case("unsupported dtype", "v2-lite", unsupported_dtype, None),
    Case("missing index entry", "v3", missing_index_entry, None),
    Case("missing config field", "v2-lite", missing_config_field, None),
    Case("config.json not JSON", "v2-lite", config_not_json, None),
    Case("safetensors header not JSON", "v2-lite", header_not_json, None),
    Case("FP8 weight without scales", "v3", missing_scale, None),
    Case("wrong scale shape", "v3", wrong_scale_shape, None),
    Case("missing shard file", "v3", missing_shard, None),
    Case("no safetensors", "v2-lite", no_weights, None),
    Case("missing model directory", "v2-lite", missing_dir, None),
    Case("token id out of range", "v2-lite", lambda m: ["token id 999999", "vocab_size"], None,
         args=["--tokens", "1,999999"]),
    Case("malformed token list", "v2-lite", lambda m: ["--tokens", "x"], None, args=["--tokens", "1,x,3"]),
    Case("empty token entry", "v2-lite", lambda m: ["--tokens"], None, args=["--tokens", "1,,3"]),
    # Both ways of bringing the shards in (the default, auto, reads these small fixtures).
    Case("truncated shard, --load mmap", "v3", truncate_shard, None, args=["--tokens", "1,2,3", "--load", "mmap"]),
    Case("truncated shard, --load read", "v3", truncate_shard, None, args=["--tokens", "1,2,3", "--load", "read"]),
    Case("missing shard file, --load read", "v3", missing_shard, None, args=["--tokens", "1,2,3", "--load", "read"]),
]


def check_unknown_option_value(whale, fixtures, option, value):
    """An unknown value of a choice option (--load, --activations) is an argument error: non-zero exit, nothing on
    stdout, a message naming the option and the value."""
    proc = subprocess.run([whale, "logits", "--model", os.path.join(fixtures, "v2-lite"), "--tokens", "1",
                           option, value], capture_output=True, text=True, timeout=120)
    problems = []
    if proc.returncode == 0:
        problems.append("exit status 0")
    if proc.stdout:
        problems.append(f"printed {len(proc.stdout)} bytes to stdout")
    if option not in proc.stderr or value not in proc.stderr:
        problems.append(f"message does not name {option} and the value")
    return problems, proc.stderr.strip().splitlines()[0] if proc.stderr.strip() else ""


def run_case(whale, fixtures, case, workdir):
    model = os.path.join(workdir, case.base)
    shutil.copytree(os.path.join(fixtures, case.base), model)
    expect = case.mutate(model)
    args = case.args or ["--tokens", "1,2,3"]
    proc = subprocess.run([whale, "logits", "--model", model] + args, capture_output=True, text=True, timeout=120)
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    problems = []
    if proc.returncode != 1:
        problems.append(f"exit status {proc.returncode}, expected 1")
    if proc.stdout:
        problems.append(f"printed {len(proc.stdout)} bytes to stdout")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines on stderr, expected 1")
    if not lines or not lines[0].startswith("whale: error: "):
        problems.append("stderr does not start with 'whale: error: '")
    for word in expect:
        if word not in proc.stderr:
            problems.append(f"message lacks {word!r}")
    for marker in ("AddressSanitizer", "runtime error", "LeakSanitizer", "terminate called"):
        if marker in proc.stderr:
            problems.append(f"sanitizer or crash output: {marker}")
    message = lines[0] if lines else proc.stderr.strip()[:300]
    return problems, message


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whale", required=True)
    ap.add_argument("--fixtures", required=True)
    args = ap.parse_args()
    failed = 0
    for case in CASES:
        with tempfile.TemporaryDirectory() as work:
            problems, message = run_case(args.whale, args.fixtures, case, work)
        status = "FAIL" if problems else "ok"
        print(f"[{status}] {case.name}: {message}")
        for p in problems:
            print(f"       {p}")
        failed += bool(problems)
    choices = [("--load", "copy"), ("--activations", "fp8")]
    for option, value in choices:
        problems, message = check_unknown_option_value(args.whale, args.fixtures, option, value)
        print(f"[{'FAIL' if problems else 'ok'}] unknown {option}: {message}")
        for p in problems:
            print(f"       {p}")
        failed += bool(problems)
    print(f"{len(CASES) + len(choices) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

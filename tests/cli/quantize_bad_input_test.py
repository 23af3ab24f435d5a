#!/usr/bin/env python3
"""Bad arguments to `whale quantize`, and corrupted whale-quantized checkpoints given to `whale logits`: each must give
one clear line on stderr naming the file, tensor or field at fault, exit status 1, no crash or sanitizer report, and
(for quantize) leave nothing behind in the output directory. Also checks that an intact q8 and q4 checkpoint load.

Usage: quantize_bad_input_test.py --whale BIN --fixtures DIR   (DIR holds the generated v3 and v2-lite checkpoints)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bad_input_test import edit_header, edit_json, read_safetensors  # noqa: E402


def quantize(whale, model, out, qtype="q8"):
    proc = subprocess.run([whale, "quantize", "--model", model, "--out", out, "--type", qtype],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"whale quantize {model} failed: {proc.stderr.strip()}")


def check_error(proc, expect):
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
    return problems, (lines[0] if lines else proc.stderr.strip()[:300])


# --- whale quantize argument errors: (name, fixture, setup(work, model) -> (args, expected words, out dir)) ---

def bad_type(work, model):
    out = os.path.join(work, "out")
    return ["--model", model, "--out", out, "--type", "q3"], ["--type", "q3"], out


def missing_model(work, model):
    missing = os.path.join(work, "nope")
    out = os.path.join(work, "out")
    return ["--model", missing, "--out", out, "--type", "q8"], [missing, "not found"], out


def out_not_empty(work, model):
    out = os.path.join(work, "out")
    os.makedirs(out)
    with open(os.path.join(out, "keep.txt"), "w") as f:
        f.write("mine\n")
    return ["--model", model, "--out", out, "--type", "q4"], [out, "not empty"], None


def out_is_input(work, model):
    return ["--model", model, "--out", model + "/.", "--type", "q8"], ["input model directory"], None


def out_is_file(work, model):
    out = os.path.join(work, "file")
    with open(out, "w") as f:
        f.write("x")
    return ["--model", model, "--out", out, "--type", "q8"], [out, "not a directory"], None


def already_quantized(work, model):
    q = os.path.join(work, "q8")
    quantize(WHALE, model, q)
    out = os.path.join(work, "out")
    return ["--model", q, "--out", out, "--type", "q4"], ["config.json", "already whale-quantized"], out


def nan_weight(work, model):
    # A NaN in a BF16 Linear weight: the error names the tensor, row and columns; no partial output is left.
    path = os.path.join(model, "model.safetensors")
    header, data = read_safetensors(path)
    name = "model.layers.1.self_attn.o_proj.weight"
    begin = header[name]["data_offsets"][0]
    cols = header[name]["shape"][1]
    pos = begin + 2 * (2 * cols + 5)  # row 2, column 5
    data = data[:pos] + b"\xc0\x7f" + data[pos + 2:]
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) - len(data))
        f.write(data)
    out = os.path.join(work, "out")
    return ["--model", model, "--out", out, "--type", "q8"], [name, "row 2", "columns 0..31", "nan"], out


QUANTIZE_CASES = [
    ("bad --type", "v2-lite", bad_type),
    ("missing model directory", "v2-lite", missing_model),
    ("output not empty", "v2-lite", out_not_empty),
    ("output is the input", "v2-lite", out_is_input),
    ("output is a file", "v2-lite", out_is_file),
    ("input already quantized", "v2-lite", already_quantized),
    ("NaN in a weight", "v2-lite", nan_weight),
]


# --- corrupted quantized checkpoints loaded by whale logits: mutate(model) -> expected words ---

def old_separate_scales(model):
    # A checkpoint from before the scales moved into the superblocks says nothing about "scales".
    edit_json(os.path.join(model, "config.json"), lambda c: c["quantization_config"].pop("scales"))
    return ["config.json", "scales", "quantize the original checkpoint again"]


def wrong_u8_shape(model):
    name = "model.layers.0.mlp.down_proj.weight"

    def fn(h):
        s = h[name]["shape"]
        h[name]["shape"] = [s[1], s[0], s[2]]  # same bytes, group blocks transposed
    edit_header(os.path.join(model, "model.safetensors"), fn)
    return ["model.safetensors", name, "shape", "q8"]


def config_format_q3(model):
    def fn(c):
        c["quantization_config"]["format"] = "q3"
    edit_json(os.path.join(model, "config.json"), fn)
    return ["config.json", "format", "q3"]


def config_format_q4_for_q8_data(model):
    def fn(c):
        c["quantization_config"]["format"] = "q4"
    edit_json(os.path.join(model, "config.json"), fn)
    return ["model.safetensors", "model.embed_tokens.weight", "shape", "q4"]


def config_group_size(model):
    edit_json(os.path.join(model, "config.json"), lambda c: c["quantization_config"].update(group_size=64))
    return ["config.json", "group_size", "64"]


def superblock_lines(model):
    # The same bytes as rows of 64-byte lines: no superblocks (codes and scale lines) whale could find.
    name = "model.layers.2.self_attn.o_proj.weight"

    def fn(h):
        s = h[name]["shape"]
        h[name]["shape"] = [s[0], s[1] * s[2] // 64, 64]
    edit_header(os.path.join(model, "model.safetensors"), fn)
    return [name, "shape", "q8"]


def u8_flattened(model):
    name = "lm_head.weight"

    def fn(h):
        s = h[name]["shape"]
        h[name]["shape"] = [s[0] * s[1] * s[2]]
    edit_header(os.path.join(model, "model.safetensors"), fn)
    return [name, "shape"]


def misaligned(model):
    # Shift every tensor by one byte (a 1-byte tensor in front): every superblock, its f16 scales included, starts at
    # an odd offset. Not an error: the logits must equal the intact checkpoint's (None: compared by the caller).
    path = os.path.join(model, "model.safetensors")
    header, data = read_safetensors(path)
    for name, info in header.items():
        if name != "__metadata__":
            info["data_offsets"] = [info["data_offsets"][0] + 1, info["data_offsets"][1] + 1]
    header["zz.pad"] = {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    import struct
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"\0" + data)
    return None


def u8_without_whale_config(model):
    edit_json(os.path.join(model, "config.json"), lambda c: c.pop("quantization_config"))
    return ["model.safetensors", "model.embed_tokens.weight", "U8", "quantization_config"]


LOAD_CASES = [
    ("scales in separate tensors (older layout)", old_separate_scales),
    ("wrong U8 shape", wrong_u8_shape),
    ("config format q3", config_format_q3),
    ("config q4, data q8", config_format_q4_for_q8_data),
    ("config group_size 64", config_group_size),
    ("U8 as 64-byte lines", superblock_lines),
    ("U8 flattened", u8_flattened),
    ("weights at odd offsets", misaligned),
    ("U8 weights, no whale config", u8_without_whale_config),
]

WHALE = None


def main():
    global WHALE
    ap = argparse.ArgumentParser()
    ap.add_argument("--whale", required=True)
    ap.add_argument("--fixtures", required=True)
    args = ap.parse_args()
    WHALE = args.whale
    failed = total = 0

    def report(name, problems, message):
        nonlocal failed, total
        total += 1
        print(f"[{'FAIL' if problems else 'ok'}] {name}: {message}")
        for p in problems:
            print(f"       {p}")
        failed += bool(problems)

    for name, base, setup in QUANTIZE_CASES:
        with tempfile.TemporaryDirectory() as work:
            model = os.path.join(work, base)
            shutil.copytree(os.path.join(args.fixtures, base), model)
            argv, expect, out = setup(work, model)
            proc = subprocess.run([args.whale, "quantize"] + argv, capture_output=True, text=True, timeout=300)
            problems, message = check_error(proc, expect)
            if out is not None and os.path.exists(out):
                problems.append(f"left {out} behind ({os.listdir(out)})")
            if name == "output not empty" and os.listdir(os.path.join(work, "out")) != ["keep.txt"]:
                problems.append("touched the files of the non-empty output directory")
            report(f"quantize: {name}", problems, message)

    with tempfile.TemporaryDirectory() as work:
        quantized = {}
        for qtype in ("q8", "q4"):
            for base in ("v2-lite", "v3"):
                q = os.path.join(work, f"{base}-{qtype}")
                quantize(args.whale, os.path.join(args.fixtures, base), q, qtype)
                quantized[(base, qtype)] = q
                proc = subprocess.run([args.whale, "logits", "--model", q, "--tokens", "1,2,3"],
                                      capture_output=True, text=True, timeout=300)
                problems = [] if proc.returncode == 0 else [f"exit status {proc.returncode}: {proc.stderr.strip()}"]
                if proc.returncode == 0 and len(json.loads(proc.stdout)["logits"]) != 3:
                    problems.append("not 3 rows of logits")
                report(f"intact {base} {qtype} loads", problems, "whale logits ran" if not problems else "")

        for name, mutate in LOAD_CASES:
            model = os.path.join(work, "case")
            shutil.rmtree(model, ignore_errors=True)
            shutil.copytree(quantized[("v2-lite", "q8")], model)
            expect = mutate(model)
            proc = subprocess.run([args.whale, "logits", "--model", model, "--tokens", "1,2,3"],
                                  capture_output=True, text=True, timeout=120)
            if expect is not None:
                report(f"logits: {name}", *check_error(proc, expect))
                continue
            intact = subprocess.run([args.whale, "logits", "--model", quantized[("v2-lite", "q8")], "--tokens",
                                     "1,2,3"], capture_output=True, text=True, timeout=120)
            problems = [] if proc.returncode == 0 else [f"exit status {proc.returncode}: {proc.stderr.strip()}"]
            if not problems and proc.stdout != intact.stdout:
                problems.append("logits differ from the intact checkpoint's")
            report(f"logits: {name}", problems, "same logits as intact" if not problems else "")

    print(f"{total - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Bad input to `whale train`: missing, malformed or mismatched data, configs, checkpoints and options. Each must give
one line on stderr naming the file, line or option at fault, exit status 1 (CLI11's own option errors: non-zero), and
no crash or sanitizer report.

Usage: train_bad_input_test.py --whale BIN --fixtures DIR   (DIR holds the generated v2-lite checkpoint)
"""
import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from quantize_bad_input_test import check_error  # noqa: E402


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--whale", required=True)
    ap.add_argument("--fixtures", required=True)
    args = ap.parse_args()
    model = os.path.join(args.fixtures, "v2-lite")
    work = tempfile.mkdtemp(prefix="whale_train_bad_")
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # pass or fail, leave no checkpoints behind
    good = write(os.path.join(work, "good.jsonl"),
                 "\n".join(json.dumps({"input_ids": list(range(2, 60))}) for _ in range(4)) + "\n")
    config = json.load(open(os.path.join(model, "config.json")))

    def config_with(**changes):
        c = dict(config)
        c.pop("quantization_config", None)
        c.update(changes)
        return write(os.path.join(work, f"config_{len(os.listdir(work))}.json"), json.dumps(c))

    out = os.path.join(work, "out")
    base = ["--seq-len", "8", "--batch-size", "2", "--out", out]
    cases = [
        ("missing data file", ["--init", model, "--data", os.path.join(work, "nope.jsonl"), *base],
         ["nope.jsonl", "cannot open"]),
        ("unsupported data type", ["--init", model, "--data", write(os.path.join(work, "d.csv"), "1,2,3"), *base],
         ["d.csv", ".csv"]),
        ("invalid JSON line", ["--init", model, "--data",
                               write(os.path.join(work, "bad.jsonl"), '{"input_ids":[2,3]}\n\n{"input_ids": [2,\n'),
                               *base], ["bad.jsonl:3", "not valid JSON"]),
        ("id outside the vocabulary", ["--init", model, "--data",
                                       write(os.path.join(work, "big.jsonl"), '{"input_ids":[2,3,99999]}\n'), *base],
         ["big.jsonl:1", "99999", "vocabulary"]),
        ("ids not integers", ["--init", model, "--data",
                              write(os.path.join(work, "str.jsonl"), '{"input_ids":["a"]}\n'), *base],
         ["str.jsonl:1", "input_ids"]),
        ("object without text or ids", ["--init", model, "--data",
                                        write(os.path.join(work, "obj.jsonl"), '{"txt":"x"}\n'), *base],
         ["obj.jsonl:1", "\"text\" or \"input_ids\""]),
        ("text without a tokenizer", ["--config", config_with(), "--data",
                                      write(os.path.join(work, "text.jsonl"), '{"text":"hello"}\n'), *base],
         ["text.jsonl:1", "--tokenizer"]),
        ("txt without a tokenizer", ["--config", config_with(), "--data",
                                     write(os.path.join(work, "t.txt"), "hello"), *base], ["t.txt", "--tokenizer"]),
        ("data shorter than a window", ["--init", model, "--data", good, "--seq-len", "500", "--out", out],
         ["--seq-len", "fewer"]),
        ("empty data", ["--init", model, "--data", write(os.path.join(work, "empty.jsonl"), ""), *base],
         ["training split has 0 tokens"]),
        ("both --config and --init", ["--config", config_with(), "--init", model, "--data", good, *base],
         ["--config", "--init"]),
        ("neither --config nor --init", ["--data", good, *base], ["--config", "--init"]),
        ("missing config", ["--config", os.path.join(work, "none.json"), "--data", good, *base],
         ["none.json", "cannot open"]),
        ("config not JSON", ["--config", write(os.path.join(work, "broken.json"), "{"), "--data", good, *base],
         ["broken.json", "not valid JSON"]),
        ("unsupported activation", ["--config", config_with(hidden_act="gelu"), "--data", good, *base],
         ["hidden_act"]),
        ("two MTP layers", ["--config", config_with(num_nextn_predict_layers=2), "--data", good, *base],
         ["config_", "num_nextn_predict_layers"]),
        ("missing --init checkpoint", ["--init", os.path.join(work, "nomodel"), "--data", good, *base],
         ["nomodel"]),
        ("tokenizer dir without tokenizer.json", ["--init", model, "--tokenizer", work, "--data", good, *base],
         [work, "tokenizer.json"]),
        ("resume without a checkpoint", ["--resume", "--data", good, "--out", os.path.join(work, "fresh")],
         ["fresh", "trainer_state.json"]),
        ("warmup longer than the run", ["--init", model, "--data", good, "--steps", "2", "--warmup", "5", *base],
         ["--warmup"]),
    ]
    failures = []
    for name, argv, expect in cases:
        proc = subprocess.run([args.whale, "train", *argv], capture_output=True, text=True, timeout=300)
        problems, line = check_error(proc, expect)
        print(f"{'ok  ' if not problems else 'FAIL'} {name}: {line}")
        if problems:
            failures.append(f"{name}: {'; '.join(problems)}")
    # CLI11 rejects bad option values itself (exit status non-zero, message naming the option).
    for name, argv, opt in [("negative lr", ["--lr", "-1"], "--lr"), ("bad optimizer", ["--optimizer", "sgdm"],
                                                                         "--optimizer")]:
        proc = subprocess.run([args.whale, "train", "--init", model, "--data", good, *base, *argv],
                              capture_output=True, text=True, timeout=60)
        ok = proc.returncode != 0 and opt in proc.stderr and "Sanitizer" not in proc.stderr
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {proc.stderr.strip().splitlines()[:1]}")
        if not ok:
            failures.append(f"{name}: exit {proc.returncode}, stderr {proc.stderr.strip()[:200]!r}")
    if failures:
        sys.exit("FAIL:\n  " + "\n  ".join(failures))
    print(f"OK: {len(cases) + 2} bad inputs rejected with one clear line")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Loading maps the checkpoint instead of copying it: resident memory after load is a small fraction of the
checkpoint, and after a forward pass (which touches the weights it reads) at most 1.15 x the checkpoint's bytes.

Usage: load_memory_test.py --whale BIN --model DIR
"""
import argparse
import os
import re
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whale", required=True)
    ap.add_argument("--model", required=True)
    args = ap.parse_args()

    files = [f for f in os.listdir(args.model) if f.endswith(".safetensors")]
    ckpt_mib = sum(os.path.getsize(os.path.join(args.model, f)) for f in files) / 2**20
    proc = subprocess.run([args.whale, "logits", "--model", args.model, "--tokens", "1,2,3,4,5,6,7,8", "--verbose"],
                          capture_output=True, text=True, timeout=600)
    print(proc.stderr.strip())
    if proc.returncode != 0:
        print("FAIL: whale exited with", proc.returncode)
        return 1
    load = re.search(r"loaded .* in ([\d.]+) s; RSS ([\d.]+) MiB", proc.stderr)
    fwd = re.search(r"forward .* RSS ([\d.]+) MiB, peak ([\d.]+) MiB", proc.stderr)
    if not load or not fwd:
        print("FAIL: --verbose did not report memory")
        return 1
    load_s, rss_load = float(load.group(1)), float(load.group(2))
    rss_fwd, peak = float(fwd.group(1)), float(fwd.group(2))
    print(f"checkpoint {ckpt_mib:.1f} MiB; RSS after load {rss_load:.1f} MiB ({load_s:.3f} s); "
          f"after forward {rss_fwd:.1f} MiB, peak {peak:.1f} MiB")
    failures = []
    # Nothing is read at load but headers, norms and block scales: well under a tenth of the weights.
    if rss_load > 64 + 0.05 * ckpt_mib:
        failures.append(f"RSS after load {rss_load:.1f} MiB: the checkpoint was copied or read")
    # The 8-token latent cache and activations are a few MiB; allow 16 MiB for them.
    if peak > 1.15 * ckpt_mib + 16:
        failures.append(f"peak RSS {peak:.1f} MiB exceeds 1.15 x {ckpt_mib:.1f} MiB + caches")
    for f in failures:
        print("FAIL:", f)
    print(f"{2 - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""`--load mmap` maps the checkpoint instead of copying it: resident memory after load is a small fraction of the
checkpoint, and after a forward pass (which touches the weights it reads) at most 1.15 x the checkpoint's bytes.
`--load read` reads it whole at load (resident memory about the checkpoint's bytes) and gives the same logits, byte
for byte.

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
    def run(load):
        proc = subprocess.run([args.whale, "logits", "--model", args.model, "--tokens", "1,2,3,4,5,6,7,8", "--verbose",
                               "--load", load], capture_output=True, text=True, timeout=600)
        print(f"--load {load}:", proc.stderr.strip())
        if proc.returncode != 0:
            raise SystemExit(f"FAIL: whale --load {load} exited with {proc.returncode}")
        load_m = re.search(r"loaded .* in ([\d.]+) s; RSS ([\d.]+) MiB", proc.stderr)
        fwd = re.search(r"forward .* RSS ([\d.]+) MiB, peak ([\d.]+) MiB", proc.stderr)
        if not load_m or not fwd:
            raise SystemExit("FAIL: --verbose did not report memory")
        return proc.stdout, float(load_m.group(1)), float(load_m.group(2)), float(fwd.group(1)), float(fwd.group(2))

    out_map, load_s, rss_load, rss_fwd, peak = run("mmap")
    print(f"checkpoint {ckpt_mib:.1f} MiB; mmap: RSS after load {rss_load:.1f} MiB ({load_s:.3f} s); "
          f"after forward {rss_fwd:.1f} MiB, peak {peak:.1f} MiB")
    failures = []
    # Nothing is read at load but headers, norms and block scales: well under a tenth of the weights.
    if rss_load > 64 + 0.05 * ckpt_mib:
        failures.append(f"mmap: RSS after load {rss_load:.1f} MiB: the checkpoint was copied or read")
    # The 8-token latent cache and activations are a few MiB; allow 16 MiB for them.
    if peak > 1.15 * ckpt_mib + 16:
        failures.append(f"mmap: peak RSS {peak:.1f} MiB exceeds 1.15 x {ckpt_mib:.1f} MiB + caches")

    out_read, load_s, rss_load, rss_fwd, peak = run("read")
    print(f"read: RSS after load {rss_load:.1f} MiB ({load_s:.3f} s); after forward {rss_fwd:.1f} MiB, "
          f"peak {peak:.1f} MiB")
    if rss_load < 0.95 * ckpt_mib:
        failures.append(f"read: RSS after load {rss_load:.1f} MiB, less than the checkpoint's {ckpt_mib:.1f} MiB")
    if peak > 1.15 * ckpt_mib + 16:
        failures.append(f"read: peak RSS {peak:.1f} MiB exceeds 1.15 x {ckpt_mib:.1f} MiB + caches")
    if out_read != out_map or not out_map.strip():
        failures.append("read: the logits differ from mmap's (or are empty)")
    for f in failures:
        print("FAIL:", f)
    print(f"{5 - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

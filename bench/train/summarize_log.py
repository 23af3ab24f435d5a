#!/usr/bin/python3
"""Summarizes `whale train` runs from their train_log.jsonl (docs/training.md, "Demonstrations").

For each run: MaxVio over consecutive windows of --window steps, two ways: the mean over the window's steps of each
step's MaxVio (max over MoE layers of max_i load_i / mean load - 1, on that step's batch), and the MaxVio of the
window's summed expert load (max over layers); the last validation loss; the MTP head's accuracy on token t+2
(training batches of the last window, and validation); median training tokens/s.

Usage: summarize_log.py [--window 50] [--json] RUN_DIR_OR_LOG [...]
"""
import argparse
import json
import os
import statistics


def load(path):
    if os.path.isdir(path):
        path = os.path.join(path, "train_log.jsonl")
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def maxvio(counts):
    mean = sum(counts) / len(counts)
    return max(counts) / mean - 1 if mean > 0 else 0.0


def summarize(lines, window):
    out = {"steps": len(lines), "windows": []}
    for w0 in range(0, len(lines), window):
        part = lines[w0:w0 + window]
        entry = {"steps": f"{part[0]['step']}-{part[-1]['step']}",
                 "train_loss": statistics.mean(l["main_loss"] for l in part)}
        if "maxvio_max" in part[0]:
            entry["maxvio_step_mean"] = statistics.mean(l["maxvio_max"] for l in part)
            layers = part[0]["expert_load"].keys()
            entry["maxvio_window"] = max(
                maxvio([sum(l["expert_load"][L][e] for l in part) for e in range(len(part[0]["expert_load"][L]))])
                for L in layers)
        if "mtp_accuracy" in part[0]:
            entry["mtp_accuracy"] = statistics.mean(l["mtp_accuracy"] for l in part)
        out["windows"].append(entry)
    vals = [l for l in lines if "val_loss" in l]
    if vals:
        out["val_loss"] = vals[-1]["val_loss"]
        if "val_mtp_accuracy" in vals[-1]:
            out["val_mtp_accuracy"] = vals[-1]["val_mtp_accuracy"]
    out["median_tokens_per_second"] = statistics.median(l["tokens_per_second"] for l in lines)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = {r: summarize(load(r), args.window) for r in args.runs}
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for run, s in results.items():
        print(f"== {run}: {s['steps']} steps, val loss {s.get('val_loss', float('nan')):.4f}"
              + (f", val MTP accuracy {s['val_mtp_accuracy']:.3f}" if "val_mtp_accuracy" in s else "")
              + f", {s['median_tokens_per_second']:.0f} tok/s")
        for w in s["windows"]:
            parts = [f"steps {w['steps']:>9}", f"loss {w['train_loss']:.4f}"]
            if "maxvio_step_mean" in w:
                parts += [f"MaxVio/step {w['maxvio_step_mean']:.3f}", f"MaxVio/window {w['maxvio_window']:.3f}"]
            if "mtp_accuracy" in w:
                parts.append(f"MTP acc {w['mtp_accuracy']:.3f}")
            print("  " + "  ".join(parts))


if __name__ == "__main__":
    main()

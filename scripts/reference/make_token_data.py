#!/usr/bin/python3
"""Writes seeded random token documents as jsonl, one {"input_ids": [...]} per line, for training tests.

Usage:
  /usr/bin/python3 scripts/reference/make_token_data.py --out FILE.jsonl --vocab V --docs N --min-len a --max-len b
      [--seed S]

Each document has a length drawn uniformly from [a, b] and ids drawn uniformly from [2, V): ids 0 and 1 are the
bos / eos tokens of the test configs (make_checkpoint.py), so the only eos in the token stream is the one the
trainer appends after each document. Deterministic for given arguments.
"""

import argparse
import json

import numpy as np


def make_docs(vocab, docs, min_len, max_len, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(docs):
        n = int(rng.integers(min_len, max_len + 1))
        out.append([int(t) for t in rng.integers(2, vocab, size=n)])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--docs", type=int, required=True)
    ap.add_argument("--min-len", type=int, required=True)
    ap.add_argument("--max-len", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.vocab < 3 or not 1 <= args.min_len <= args.max_len or args.docs < 0:
        raise SystemExit("need --vocab >= 3, 1 <= --min-len <= --max-len, --docs >= 0")
    with open(args.out, "w") as f:
        for ids in make_docs(args.vocab, args.docs, args.min_len, args.max_len, args.seed):
            f.write(json.dumps({"input_ids": ids}, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()

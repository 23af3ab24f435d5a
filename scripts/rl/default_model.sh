#!/usr/bin/env bash
# Trains the embedded default model, models/whale-tiny-r1, from nothing, with the exact commands of its card
# (models/whale-tiny-r1/README.md):
#   1. a byte-level tokenizer with R1's chat template;
#   2. worked examples (training splits only) of 1-2 digit multiplication and 1-3 digit addition;
#   3. supervised training of docs/configs/r1-tiny.json (3.6 M parameters), 3000 steps;
#   4. GRPO on multiplication from that checkpoint, 200 steps;
#   5. the result rounded to BF16 (whale quantize --type bf16) into OUT, with the tokenizer files and a
#      generation_config.json of R1's sampling settings;
#   6. the card's evaluations.
# Usage: scripts/rl/default_model.sh WORKDIR OUT [WHALE]   (about 25 minutes on 2 cores)
set -euo pipefail
work=${1:?usage: default_model.sh WORKDIR OUT [WHALE]}
out=${2:?usage: default_model.sh WORKDIR OUT [WHALE]}
whale=$(realpath "${3:-$(dirname "$0")/../../build/release/whale}")
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$work"
out=$(realpath -m "$out")
cd "$work"
mul=(--task multiplication --min-digits 1 --max-digits 2 --held-out 500 --seed 0)
add=(--task addition --min-digits 1 --max-digits 3 --held-out 500 --seed 0)

/usr/bin/python3 "$repo/scripts/reference/make_tokenizer.py" --vocab-size 256 --out tok
"$whale" rl --write-sft mul.jsonl --tokenizer tok "${mul[@]}" --sft-examples 100000
"$whale" rl --write-sft add.jsonl --tokenizer tok "${add[@]}" --sft-examples 50000
cat mul.jsonl add.jsonl > sft.jsonl
"$whale" train --config "$repo/docs/configs/r1-tiny.json" --data sft.jsonl --tokenizer tok --out sft \
    --steps 3000 --batch-size 16 --seq-len 128 --lr 2e-3 --warmup 100 --mtp-weight 0.3 --eval-every 500 \
    --log-every 100 --threads 2
"$whale" rl --init sft --out rl "${mul[@]}" --steps 200 --prompts 32 --group 8 --max-new-tokens 64 --lr 5e-5 \
    --beta 0.04 --eval-every 50 --save-every 50 --threads 2
"$whale" quantize --model rl --out "$out" --type bf16
rm -f "$out/rl_log.jsonl" "$out/rl_state.json"
printf '{\n  "bos_token_id": 0,\n  "eos_token_id": 1,\n  "do_sample": true,\n  "temperature": 0.6,\n  "top_p": 0.95\n}\n' \
    > "$out/generation_config.json"
for t in mul add; do
  declare -n task=$t
  "$whale" rl --init "$out" --eval-only "${task[@]}" --max-new-tokens 64
done

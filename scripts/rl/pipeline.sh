#!/usr/bin/env bash
# The RL pipeline of docs/rl.md, end to end, with the exact settings of its measurements:
#   1. a byte-level tokenizer with R1's chat template;
#   2. worked examples of 1-2 digit multiplication (training split only; the held-out 500 never appear);
#   3. supervised training of the 3.6 M-parameter model of docs/configs/r1-tiny.json, with a checkpoint every 100
#      steps (the RL run of docs/rl.md's result starts from step 300's, "partial competence": pass@1 0.19);
#   4. GRPO from that checkpoint, 500 steps, and the same run with shuffled rewards as the control.
# Usage: scripts/rl/pipeline.sh WORKDIR [WHALE]   (about 1.5 hours on 2 cores)
set -euo pipefail
work=${1:?usage: pipeline.sh WORKDIR [WHALE]}
whale=$(realpath "${2:-$(dirname "$0")/../../build/release/whale}")
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$work"
cd "$work"
task=(--task multiplication --min-digits 1 --max-digits 2 --held-out 500 --seed 0)

/usr/bin/python3 "$repo/scripts/reference/make_tokenizer.py" --vocab-size 256 --out tok
"$whale" rl --write-sft sft.jsonl --tokenizer tok "${task[@]}" --sft-examples 100000

# Checkpoints every 100 steps, each kept (sft_N): --stop-at ends the run with a checkpoint, --resume goes on.
for stop in 100 200 300 400; do
  resume=()
  [ "$stop" -gt 100 ] && resume=(--resume)
  "$whale" train --config "$repo/docs/configs/r1-tiny.json" --data sft.jsonl --tokenizer tok --out sft \
      --steps 1500 --batch-size 16 --seq-len 128 --lr 2e-3 --warmup 100 --mtp-weight 0.3 --eval-every 100 \
      --log-every 50 --stop-at "$stop" "${resume[@]}"
  rm -rf "sft_$stop" && cp -r sft "sft_$stop"
done

rl=(rl --init sft_300 "${task[@]}" --steps 500 --prompts 32 --group 8 --max-new-tokens 64 --lr 5e-5 --beta 0.04
    --eval-every 50 --save-every 50 --threads 1)
# The run and its control side by side, one thread each.
"$whale" "${rl[@]}" --out rl &
"$whale" "${rl[@]}" --out rl_control --shuffle-rewards
wait
grep -h '"eval"' rl/rl_log.jsonl rl_control/rl_log.jsonl

#!/usr/bin/env bash
# The RL pipeline of docs/rl.md's result, end to end, with the exact settings of its measurements:
#   1. a byte-level tokenizer with R1's chat template;
#   2. 100,000 examples of 2-digit multiplication (training split only; the held-out 500 never appear), half of them
#      worked out inside <think>, half answered at once with an empty <think> (--sft-direct-fraction 0.5);
#   3. supervised training of the 3.6 M-parameter model of docs/configs/r1-tiny.json on them, 1500 steps: a model
#      that reasons on about half of its answers and guesses on the rest ("partial competence": pass@1 0.45);
#   4. GRPO from it, 100 steps, beside four controls: shuffled rewards (across the step, and within each group), each
#      with two sampling seeds.
# Usage: scripts/rl/pipeline.sh WORKDIR [WHALE]   (about 40 minutes on 2 cores)
# Everything runs on one thread per process: the floating-point sums, and so the samples, depend on the thread count.
set -euo pipefail
work=${1:?usage: pipeline.sh WORKDIR [WHALE]}
whale=$(realpath "${2:-$(dirname "$0")/../../build/release/whale}")
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$work"
cd "$work"
task=(--task multiplication --min-digits 2 --max-digits 2 --held-out 500 --seed 0)

/usr/bin/python3 "$repo/scripts/reference/make_tokenizer.py" --vocab-size 256 --out tok
"$whale" rl --write-sft sft.jsonl --tokenizer tok "${task[@]}" --sft-examples 100000 --sft-direct-fraction 0.5
"$whale" train --config "$repo/docs/configs/r1-tiny.json" --data sft.jsonl --tokenizer tok --out sft \
    --steps 1500 --batch-size 16 --seq-len 128 --lr 2e-3 --warmup 100 --mtp-weight 0.3 --eval-every 500 \
    --log-every 250 --threads 1

rl=(rl --init sft "${task[@]}" --steps 100 --prompts 32 --group 8 --max-new-tokens 64 --lr 5e-6 --beta 0.04
    --eval-every 25 --eval-samples 16 --save-every 25 --threads 1)
# Two at a time, one thread each.
"$whale" "${rl[@]}" --out rl &
"$whale" "${rl[@]}" --out control_step_s0 --shuffle-rewards
wait
"$whale" "${rl[@]}" --out control_step_s1 --shuffle-rewards --sampling-seed 1 &
"$whale" "${rl[@]}" --out control_group_s0 --shuffle-rewards-in-groups
wait
"$whale" "${rl[@]}" --out control_group_s1 --shuffle-rewards-in-groups --sampling-seed 1
for run in rl control_step_s0 control_step_s1 control_group_s0 control_group_s1; do
  printf '%-17s' "$run"
  /usr/bin/python3 -c 'import json, sys
print(" ".join("%d:%.3f" % (d["step"], d["eval"]["pass1"]) for d in map(json.loads, open(sys.argv[1])) if "eval" in d))' \
      "$run/rl_log.jsonl"
done

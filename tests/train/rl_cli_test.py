#!/usr/bin/env python3
"""`whale rl` end to end on the small generated v3 checkpoint (MoE with routing bias, R1 chat template): a run
evaluates before its first and after its last step and logs every step with the documented fields; a run stopped with
--stop-at and continued with --resume writes the same log and weights as one uninterrupted run; the result is a
checkpoint `whale run` loads; bad task files and options give one-line errors naming the file, line and field.

Usage: rl_cli_test.py --whale BIN --fixtures DIR   (DIR holds the generated v3 checkpoint)
"""
import argparse
import atexit
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile

STEP_FIELDS = ("reward", "accuracy", "format", "response_length", "kl", "entropy", "grad_norm", "clipped_fraction")
EVAL_FIELDS = ("pass1", "pass2", "greedy", "format", "response_length", "problems")


def run(cmd, ok=True):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if ok and r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}\n{r.stderr[-2000:]}")
    return r


def strip_times(line):
    d = json.loads(line)
    for k in ("seconds", "sample_seconds"):
        d.pop(k, None)
    if "eval" in d:
        d["eval"].pop("seconds", None)
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--whale", required=True)
    ap.add_argument("--fixtures", required=True)
    args = ap.parse_args()
    model = os.path.join(args.fixtures, "v3")
    work = tempfile.mkdtemp(prefix="whale_rl_cli_")
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    problems = []
    base = [args.whale, "rl", "--init", model, "--task", "multiplication", "--min-digits", "1", "--max-digits", "2",
            "--train-problems", "40", "--held-out", "6", "--prompts", "3", "--group", "3", "--max-new-tokens", "12",
            "--eval-samples", "2", "--steps", "4", "--eval-every", "2", "--threads", "2", "--seed", "5"]

    a = os.path.join(work, "a")
    r = run(base + ["--out", a])
    log = [json.loads(l) for l in open(os.path.join(a, "rl_log.jsonl"))]
    evals = [l for l in log if "eval" in l]
    steps = [l for l in log if "eval" not in l]
    if [e["step"] for e in evals] != [0, 2, 4]:
        problems.append(f"evaluations at steps {[e['step'] for e in evals]}, expected 0, 2, 4")
    if [s["step"] for s in steps] != [1, 2, 3, 4]:
        problems.append(f"step lines {[s['step'] for s in steps]}")
    for s in steps:
        missing = [k for k in STEP_FIELDS if k not in s]
        if missing:
            problems.append(f"step {s['step']} lacks {missing}")
    for e in evals:
        missing = [k for k in EVAL_FIELDS if k not in e["eval"]]
        if missing:
            problems.append(f"evaluation at step {e['step']} lacks {missing}")
        elif e["eval"]["problems"] != 6:
            problems.append(f"evaluation over {e['eval']['problems']} problems, expected the 6 held out")
    # The random model earns a format reward only now and then: steps where every sample of every group scored the
    # same have zero advantages and, before any update, zero KL, so no gradient; a step with differing rewards moves
    # the policy (this seed has one).
    for s in steps:
        if s["reward"] == 0 and s["kl"] == 0 and s["grad_norm"] != 0:
            problems.append(f"step {s['step']}: gradient {s['grad_norm']} without any reward or KL")
    if not any(s["grad_norm"] > 0 for s in steps):
        problems.append("no step produced a gradient (expected one from step 4's format reward)")
    if "eval at step 0" not in r.stderr or "step 4/4" not in r.stderr:
        problems.append("progress lines missing from stderr")

    # On-policy (one update per batch) the ratio is 1 where the gradient is taken: nothing is ever clipped. With two
    # updates per batch and a large learning rate, the second update sees ratios far from 1 on step 4, where the
    # rewards differ, and clips some tokens.
    if any(s["clipped_fraction"] != 0 for s in steps):
        problems.append("on-policy run reports clipped tokens")
    c = os.path.join(work, "c")
    run(base[:-6] + ["--threads", "2", "--seed", "5", "--out", c, "--updates-per-batch", "2", "--lr", "0.05"])
    two = [json.loads(l) for l in open(os.path.join(c, "rl_log.jsonl"))]
    two = [l for l in two if "eval" not in l]
    if not two or two[-1]["clipped_fraction"] <= 0:
        problems.append(f"--updates-per-batch 2: no clipped tokens at step 4 ({two[-1] if two else None})")

    # Interrupted and resumed: the same log (timings aside) and the same weights.
    b = os.path.join(work, "b")
    run(base + ["--out", b, "--stop-at", "2"])
    if not os.path.exists(os.path.join(b, "rl_state.json")):
        problems.append("--stop-at 2 left no rl_state.json")
    run([args.whale, "rl", "--resume", "--out", b] + base[4:])
    la = [strip_times(l) for l in open(os.path.join(a, "rl_log.jsonl"))]
    lb = [strip_times(l) for l in open(os.path.join(b, "rl_log.jsonl"))]
    if la != lb:
        problems.append("--stop-at 2 then --resume: rl_log.jsonl differs from the uninterrupted run")
    if not filecmp.cmp(os.path.join(a, "model.safetensors"), os.path.join(b, "model.safetensors"), shallow=False):
        problems.append("--stop-at 2 then --resume: model.safetensors differs from the uninterrupted run")

    gen = run([args.whale, "run", "--model", a, "-p", "What is 3*4?", "--chat", "-n", "8", "--temp", "0"])
    if "stopped" not in gen.stderr and not gen.stdout:
        problems.append("whale run produced nothing from the RL checkpoint")

    # Bad input: one line naming the file (and line and field), non-zero exit, no crash.
    def expect_error(name, extra, *needles):
        r = run([args.whale, "rl", "--init", model, "--out", os.path.join(work, "bad")] + extra, ok=False)
        err = r.stderr.strip()
        if r.returncode == 0 or r.returncode < 0:
            problems.append(f"{name}: exit {r.returncode}")
        elif len(err.splitlines()) != 1 or not all(n in err for n in needles):
            problems.append(f"{name}: error {err!r} lacks {needles}")

    def task_file(name, text):
        p = os.path.join(work, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    good = '{"question": "What is 2+2?", "answer": "4"}\n'
    f = task_file("malformed.jsonl", good + '{"question": "What is 3+3?", "answer": \n')
    expect_error("malformed JSONL", ["--task", f, "--held-out", "1"], "malformed.jsonl:2")
    f = task_file("missing.jsonl", good + '{"question": "What is 3+3?"}\n')
    expect_error("missing answer", ["--task", f, "--held-out", "1"], "missing.jsonl:2", "answer")
    f = task_file("wrongtype.jsonl", good + '{"question": 7, "answer": "4"}\n')
    expect_error("question of the wrong type", ["--task", f, "--held-out", "1"], "wrongtype.jsonl:2", "question")
    f = task_file("verifier.jsonl", good + '{"question": "q", "answer": "4", "verifier": "fuzzy"}\n')
    expect_error("unknown verifier", ["--task", f, "--held-out", "1"], "verifier.jsonl:2", "verifier")
    expect_error("missing task file", ["--task", os.path.join(work, "nothere.jsonl")], "nothere.jsonl")
    f = task_file("small.jsonl", good * 3)
    expect_error("held-out leaves nothing", ["--task", f, "--held-out", "3"], "small.jsonl", "--held-out")
    expect_error("unknown task", ["--task", "poetry"], "poetry")
    r = run([args.whale, "rl", "--resume", "--out", os.path.join(work, "none")], ok=False)
    if r.returncode == 0 or "rl_state.json" not in r.stderr:
        problems.append(f"--resume without a run: exit {r.returncode}, {r.stderr.strip()!r}")

    # --sampling-seed moves the rollouts only: equal to --seed it is the run itself; another value keeps the held-out
    # set (the step-0 evaluation is the same) and draws other samples.
    same, other = os.path.join(work, "same_seed"), os.path.join(work, "other_seed")
    run(base + ["--out", same, "--sampling-seed", "5", "--stop-at", "1"])
    run(base + ["--out", other, "--sampling-seed", "6", "--stop-at", "1"])
    first = [strip_times(l) for l in open(os.path.join(a, "rl_log.jsonl"))][:2]
    same_log = [strip_times(l) for l in open(os.path.join(same, "rl_log.jsonl"))][:2]
    other_log = [strip_times(l) for l in open(os.path.join(other, "rl_log.jsonl"))][:2]
    if same_log != first:
        problems.append("--sampling-seed equal to --seed: the first step differs from the run without it")
    if other_log[0] != first[0] or other_log[1] == first[1]:
        problems.append("--sampling-seed 6: expected the same step-0 evaluation and a different first step")

    # --write-sft: worked examples of the training split only; --sft-direct-fraction turns that share of them into
    # immediate answers (an empty <think>), and 0 (the default) writes the same file as before the option existed.
    def write_sft(name, extra):
        out = os.path.join(work, name)
        run([args.whale, "rl", "--write-sft", out, "--tokenizer", model, "--task", "multiplication", "--min-digits",
             "1", "--max-digits", "2", "--held-out", "50", "--sft-examples", "400"] + extra)
        return [json.loads(l)["text"] for l in open(out)]
    worked, default, half, direct = (write_sft("sft_w.jsonl", ["--sft-direct-fraction", "0"]),
                                     write_sft("sft_d.jsonl", []),
                                     write_sft("sft_h.jsonl", ["--sft-direct-fraction", "0.5"]),
                                     write_sft("sft_1.jsonl", ["--sft-direct-fraction", "1"]))
    empty_think = lambda t: "<think>\n</think>\n\n" in t
    if worked != default or any(empty_think(t) for t in worked) or len(worked) != 400:
        problems.append("--write-sft: fraction 0 is not the default file of 400 worked examples")
    if not all(empty_think(t) for t in direct):
        problems.append("--sft-direct-fraction 1: an example with working")
    n_direct = sum(map(empty_think, half))
    if not 160 <= n_direct <= 240:
        problems.append(f"--sft-direct-fraction 0.5: {n_direct} of 400 direct")
    r = run([args.whale, "rl", "--write-sft", os.path.join(work, "x.jsonl"), "--tokenizer", model,
             "--sft-direct-fraction", "1.5"], ok=False)
    if r.returncode <= 0 or "--sft-direct-fraction" not in r.stderr.splitlines()[0]:
        problems.append(f"--sft-direct-fraction 1.5: exit {r.returncode}, {r.stderr.strip()!r}")

    if problems:
        sys.exit("FAIL:\n  " + "\n  ".join(problems))
    print("rl cli: ok")


if __name__ == "__main__":
    main()

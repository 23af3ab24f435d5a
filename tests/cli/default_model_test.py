#!/usr/bin/env python3
"""The embedded default model, models/whale-tiny-r1, as its card (models/whale-tiny-r1/README.md) describes it.

1. `whale run -p "What is 47*38?" --chat` with no --model finds it, prints reasoning (the place-value steps, then
   </think>) and then 1786 (three seeds at the default temperature, and greedy); `whale chat` with no --model answers
   the same question on stdin.
2. Every evaluation command the card gives (`whale rl --init models/whale-tiny-r1 --eval-only ...`) is run as written
   and its held-out pass@1 must be within 3 points of the number the card's table states for that task.
3. WHALE_DEFAULT_MODEL overrides where it is looked for: a missing directory gives one line naming it and --model
   (exit 1); another model's directory is used.

Usage: default_model_test.py --whale BIN --repo DIR --fixture MODEL_DIR [--parts answer,card,env]
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys

NAME = "whale-tiny-r1"


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


def check_answer(whale, problems):
    for extra in (["--seed", "1"], ["--seed", "2"], ["--seed", "3"], ["--temp", "0"]):
        proc = run([whale, "run", "-p", "What is 47*38?", "--chat", *extra])
        out = proc.stdout
        label = "whale run " + " ".join(extra)
        if proc.returncode != 0:
            problems.append(f"{label}: exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
            continue
        if "</think>" not in out:
            problems.append(f"{label}: no reasoning (no </think>) in {out!r}")
            continue
        thinking, answer = out.split("</think>", 1)
        if "=" not in thinking:
            problems.append(f"{label}: the reasoning shows no steps: {thinking!r}")
        if answer.strip() != "1786":
            problems.append(f"{label}: answer {answer.strip()!r}, expected 1786")
    proc = run([whale, "chat"], input="What is 47*38?\n")
    if proc.returncode != 0 or "1786" not in proc.stdout:
        problems.append(f"whale chat (no --model): exit {proc.returncode}, stdout {proc.stdout[-300:]!r}, "
                        f"stderr {proc.stderr.strip()[-300:]!r}")


def card_claims(card):
    """{task: pass@1} from the card's evaluation table, and the eval commands of its code blocks."""
    claims = {}
    for line in card.splitlines():
        m = re.match(r"\|\s*(addition|multiplication|countdown)\b[^|]*\|\s*([0-9.]+)\s*\|", line)
        if m:
            claims[m.group(1)] = float(m.group(2))
    commands = [line.strip() for line in card.splitlines()
                if re.search(r"whale rl --init models/" + NAME + r" --eval-only", line)]
    return claims, commands


def check_card(whale, repo, problems):
    with open(os.path.join(repo, "models", NAME, "README.md")) as f:
        claims, commands = card_claims(f.read())
    if not claims or not commands:
        problems.append(f"card: found {len(claims)} pass@1 claims and {len(commands)} evaluation commands")
    checked = set()
    for command in commands:
        argv = shlex.split(command)
        argv[0] = whale  # the card writes build/release/whale
        task = argv[argv.index("--task") + 1]
        proc = run(argv, cwd=repo)
        if proc.returncode != 0:
            problems.append(f"card command {command!r}: exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
            continue
        got = json.loads(proc.stdout.strip().splitlines()[-1])["eval"]["pass1"]
        want = claims.get(task)
        print(f"{task}: pass@1 {got:.3f}, card {want}")
        if want is None:
            problems.append(f"card: no pass@1 in the table for task {task}")
        elif abs(got - want) > 0.03:
            problems.append(f"card: {task} pass@1 {got:.3f} is not within 3 points of the card's {want}")
        checked.add(task)
    for task in set(claims) - checked:
        problems.append(f"card: {task} has a pass@1 but no command to reproduce it")


def check_missing(whale, fixture, problems):
    env = dict(os.environ, WHALE_DEFAULT_MODEL="/nonexistent/whale-model")
    proc = run([whale, "run", "-p", "hi", "-n", "1"], env=env)
    err = proc.stderr.strip()
    if proc.returncode == 0 or len(err.splitlines()) != 1 or "--model" not in err or "/nonexistent/whale-model" not in err:
        problems.append(f"WHALE_DEFAULT_MODEL missing: expected exit 1 and one line naming the place and --model, got "
                        f"{proc.returncode} {err!r}")
    env["WHALE_DEFAULT_MODEL"] = fixture
    proc = run([whale, "run", "-p", "hi", "-n", "2", "--temp", "0"], env=env)
    if proc.returncode != 0:
        problems.append(f"WHALE_DEFAULT_MODEL={fixture}: exit {proc.returncode}: {proc.stderr.strip()[-300:]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--whale", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--fixture", required=True, help="another model directory, for WHALE_DEFAULT_MODEL")
    ap.add_argument("--parts", default="answer,card,env", help="comma list of answer, card, env (default: all)")
    args = ap.parse_args()
    problems = []
    parts = set(args.parts.split(","))
    if "answer" in parts:
        check_answer(args.whale, problems)
    if "card" in parts:
        check_card(args.whale, args.repo, problems)
    if "env" in parts:
        check_missing(args.whale, args.fixture, problems)
    for p in problems:
        print("FAIL:", p)
    if problems:
        return 1
    print(f"default model: {', '.join(sorted(parts))} checks pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Greedy `whale run` against the PyTorch reference: for each prompt, the reference (scripts/reference/deepseek_ref.py,
float64) extends the prompt by argmax one token at a time until EOS or N tokens, the reference tokenizer
(transformers.js) decodes the continuation as DeepSeek's generate.py does (skip_special_tokens), and whale's stdout
must be exactly that text, U+FFFD for invalid UTF-8 included (whale with --activations f32, the exact products that
the reference computes). One prompt must make the model emit a special or added
token mid-stream.

Usage: run_greedy_test.py --whale BIN --model DIR [--n 24]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "reference"))
import deepseek_ref  # noqa: E402

PROMPTS = ["The answer is", "What is two plus two?", "Think step by step", "中文", "x", "<think>\nWe add",
           "In the beginning the model", "😀 ok", "1234567", "<｜User｜>Hi<｜Assistant｜>"]


class ReferenceTokenizer:
    def __init__(self, model_dir):
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "reference_tokenizer.mjs"), model_dir],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")

    def ask(self, req):
        self.proc.stdin.write(json.dumps(req, ensure_ascii=False) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whale", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--n", type=int, default=24)
    a = ap.parse_args()
    with open(os.path.join(a.model, "config.json")) as f:
        cfg = json.load(f)
    bos, eos = cfg["bos_token_id"], cfg["eos_token_id"]
    with open(os.path.join(a.model, "tokenizer.json"), encoding="utf-8") as f:
        added = {t["id"] for t in json.load(f)["added_tokens"]}
    ref = deepseek_ref.Model(a.model)
    tok = ReferenceTokenizer(a.model)
    failures, saw_added = 0, False
    for prompt in PROMPTS:
        # add_bos_token: BOS, then the text (transformers.js does not apply LlamaTokenizerFast's add_bos_token).
        ids = [bos] + tok.ask({"encode": prompt})["ids"]
        out, margin = [], float("inf")
        for _ in range(a.n):
            logits = ref.forward(ids + out)[-1]
            top2 = logits.topk(2).values
            margin = min(margin, float(top2[0] - top2[1]))
            nxt = int(logits.argmax())
            if nxt == eos:
                break
            out.append(nxt)
        expected = tok.ask({"decode": out, "skip_special": True})["text"]
        saw_added |= any(t in added for t in out)
        p = subprocess.run([a.whale, "run", "--model", a.model, "-p", prompt, "-n", str(a.n), "--temp", "0",
                            "--activations", "f32"],
                           capture_output=True, timeout=300)
        got = p.stdout.decode("utf-8", errors="strict")
        # whale's logits are within 1.5e-5 of the reference here (cli logits tests), so a margin above 5e-5 cannot flip.
        ok = p.returncode == 0 and got == expected and margin > 5e-5
        failures += not ok
        print(f"[{'ok' if ok else 'FAIL'}] {prompt!r}: {len(out)} tokens {out}, argmax margin {margin:.2e}, "
              f"text {expected!r}" + ("" if ok else f"\n       whale: {got!r} (exit {p.returncode}) "
                                              f"{p.stderr.decode(errors='replace').strip()}"))
    tok.close()
    if not saw_added:
        print("[FAIL] no prompt made the model emit a special or added token mid-stream")
        failures += 1
    print(f"{len(PROMPTS) + 1 - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

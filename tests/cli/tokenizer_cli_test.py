#!/usr/bin/env python3
"""whale tokenize and whale chat-template from the command line: the spec's test vectors (deepseek-spec §5.1), decoding,
BOS, the V3 chat format, and malformed inputs, each of which must give one clear line on stderr and exit status 1.

Usage: tokenizer_cli_test.py --whale BIN --tokenizer DIR   (DIR: the real DeepSeek-V3 tokenizer files)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

VECTORS = [  # deepseek-spec §5.1
    ("Hello, world!", [19923, 14, 2058, 3]),
    ("DeepSeek", [53091, 4374, 1465]),
    (" 12345 numbers 1234567", [223, 6895, 1883, 3737, 223, 6895, 18009, 25]),
    ("中文分词测试，日本語のテキスト。", [21134, 121402, 10251, 303, 88768, 1576, 17383, 20367, 24552, 320]),
    ("def f(x):\n    return x**2\n\n", [3465, 285, 4042, 3395, 361, 1354, 1527, 666, 20, 271]),
    ("It's a test.com example\r\n\r\nend", [2107, 734, 260, 1950, 2193, 2511, 204, 201, 204, 201, 523]),
    ("   leading spaces and trailing   ", [262, 6646, 13564, 305, 52964, 361]),
    ("emoji 😀👍 done", [18872, 7063, 53769, 225, 92526, 3989]),
    ("\n", [201]), ("\n\n", [271]), (" ", [223]),
]

failures = []
checks = [0]


def run(whale, args, stdin):
    return subprocess.run([whale] + args, input=stdin.encode() if isinstance(stdin, str) else stdin,
                          capture_output=True, timeout=120)


def check(name, ok, detail=""):
    checks[0] += 1
    print(f"[{'ok' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(name)


def expect_error(name, proc, *words):
    err = proc.stderr.decode(errors="replace")
    lines = [l for l in err.splitlines() if l.strip()]
    checks[0] += 1
    ok = (proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("whale: error: ")
          and all(w in err for w in words) and "Sanitizer" not in err and not proc.stdout)
    print(f"[{'ok' if ok else 'FAIL'}] {name}: {lines[0] if lines else err[:200]}")
    if not ok:
        failures.append(name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whale", required=True)
    ap.add_argument("--tokenizer", required=True)
    a = ap.parse_args()
    w, d = a.whale, a.tokenizer

    for text, ids in VECTORS:
        p = run(w, ["tokenize", "--model", d], text)
        got = json.loads(p.stdout) if p.returncode == 0 else None
        check(f"encode {text!r}", got == ids, f"got {got}")
        p = run(w, ["tokenize", "--model", d, "--decode"], json.dumps(ids))
        check(f"decode {ids}", p.stdout.decode() == text, f"got {p.stdout!r}")

    p = run(w, ["tokenize", "--model", d, "--bos"], "Hello, world!")
    check("--bos adds BOS 0", json.loads(p.stdout) == [0, 19923, 14, 2058, 3], p.stdout)
    # 0xE4 0xB8 is an unfinished 3-byte sequence (the byte tokens of '中' without its last byte): one U+FFFD.
    p = run(w, ["tokenize", "--model", d], "中")
    ids = json.loads(p.stdout)
    p = run(w, ["tokenize", "--model", d, "--decode"], json.dumps([0] + ids + [1]))
    check("decode keeps special tokens", p.stdout.decode() == "<｜begin▁of▁sentence｜>中<｜end▁of▁sentence｜>", p.stdout)
    p = run(w, ["tokenize", "--model", d, "--decode", "--skip-special"], json.dumps([0] + ids + [1]))
    check("--skip-special drops them", p.stdout.decode() == "中", p.stdout)
    byte_e4 = 161  # tokenizer id of the byte-level character for 0xE4 ('ä' U+00E4)
    p = run(w, ["tokenize", "--model", d, "--decode"], json.dumps([byte_e4, 19923]))
    check("invalid UTF-8 decodes to U+FFFD", p.stdout.decode() == "\ufffdHello", p.stdout)

    conv = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "2+2 = 4."},
            {"role": "user", "content": "And 3+3?"}]
    p = run(w, ["chat-template", "--model", d], json.dumps(conv))
    want = ("<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>What is 2+2?<｜Assistant｜>2+2 = 4."
            "<｜end▁of▁sentence｜><｜User｜>And 3+3?<｜Assistant｜>")
    check("V3 chat template (spec §5.2)", p.stdout.decode() == want, p.stdout.decode())
    p = run(w, ["chat-template", "--model", d, "--no-generation-prompt"], json.dumps({"messages": conv}))
    check("--no-generation-prompt", p.stdout.decode() == want[: -len("<｜Assistant｜>")], p.stdout.decode())
    parts = [{"role": "user", "content": [{"type": "text", "text": "What is "}, {"type": "text", "text": "2+2?"}]}]
    p = run(w, ["chat-template", "--model", d], json.dumps(parts))
    check("content parts are joined", p.stdout.decode() == "<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜>",
          p.stdout.decode())

    expect_error("decode input not JSON", run(w, ["tokenize", "--model", d, "--decode"], "[1, 2"), "stdin")
    expect_error("decode id out of vocabulary", run(w, ["tokenize", "--model", d, "--decode"], "[1, 999999]"), "999999")
    expect_error("decode negative id", run(w, ["tokenize", "--model", d, "--decode"], "[-3]"), "element 0")
    expect_error("encode invalid UTF-8", run(w, ["tokenize", "--model", d], b"ab\xff"), "UTF-8", "byte 2")
    expect_error("messages not a list", run(w, ["chat-template", "--model", d], '{"role": "user"}'), "messages")
    expect_error("message without role", run(w, ["chat-template", "--model", d], '[{"content": "x"}]'), "role")

    with tempfile.TemporaryDirectory() as tmp:
        def variant(name, mutate, *words, cmd="tokenize"):
            t = os.path.join(tmp, name)
            shutil.copytree(d, t)
            mutate(t)
            stdin = '[{"role": "user", "content": "hi"}]' if cmd == "chat-template" else "Hello"
            expect_error(name, run(w, [cmd, "--model", t], stdin), *words)

        def edit(path, fn):
            with open(path, encoding="utf-8") as f:
                j = json.load(f)
            fn(j)
            with open(path, "w", encoding="utf-8") as f:
                json.dump(j, f, ensure_ascii=False)

        def truncate(t):
            path = os.path.join(t, "tokenizer.json")
            with open(path, "rb") as f:
                data = f.read()
            with open(path, "wb") as f:
                f.write(data[: len(data) // 2])

        variant("tokenizer.json missing", lambda t: os.remove(os.path.join(t, "tokenizer.json")), "tokenizer.json")
        variant("tokenizer.json truncated", truncate, "tokenizer.json", "JSON")
        variant("model missing", lambda t: edit(os.path.join(t, "tokenizer.json"), lambda j: j.pop("model")),
                "tokenizer.json", "model")
        variant("unknown model type",
                lambda t: edit(os.path.join(t, "tokenizer.json"), lambda j: j["model"].update(type="WordPiece")),
                "tokenizer.json", "WordPiece")
        variant("merge of unknown token",
                lambda t: edit(os.path.join(t, "tokenizer.json"), lambda j: j["model"]["merges"].insert(0, "zzq qqz")),
                "tokenizer.json", "merges[0]")
        variant("unknown pre_tokenizer",
                lambda t: edit(os.path.join(t, "tokenizer.json"), lambda j: j.update(pre_tokenizer={"type": "Bogus"})),
                "tokenizer.json", "Bogus")
        variant("bad regex", lambda t: edit(os.path.join(t, "tokenizer.json"), lambda j: j["pre_tokenizer"]["pretokenizers"][0]
                                            .update(pattern={"Regex": "(\\p{N"})), "tokenizer.json", "regex")
        variant("vocab id not an integer",
                lambda t: edit(os.path.join(t, "tokenizer.json"), lambda j: j["model"]["vocab"].update({"!": "x"})),
                "tokenizer.json", "vocab")
        variant("tokenizer_config.json not JSON",
                lambda t: open(os.path.join(t, "tokenizer_config.json"), "w").write("{"), "tokenizer_config.json")
        variant("bos_token unknown",
                lambda t: edit(os.path.join(t, "tokenizer_config.json"), lambda j: j.update(bos_token="<nope>")),
                "tokenizer_config.json", "bos_token")
        variant("no chat_template",
                lambda t: edit(os.path.join(t, "tokenizer_config.json"), lambda j: j.pop("chat_template")),
                "chat_template", cmd="chat-template")
        variant("chat_template syntax error",
                lambda t: edit(os.path.join(t, "tokenizer_config.json"), lambda j: j.update(chat_template="{% if %}")),
                "tokenizer_config.json", "chat template line 1", cmd="chat-template")

    print(f"{checks[0] - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

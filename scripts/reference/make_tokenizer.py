#!/usr/bin/env python3
"""A small byte-level BPE tokenizer for the random test checkpoints, in the Hugging Face layout (tokenizer.json and
tokenizer_config.json), so that text generation can be tested end to end on models whose vocabulary is a few hundred
entries.

Layout of the vocabulary (ids): 0 BOS, 1 EOS (as the checkpoints' config.json says), 2 <｜User｜>, 3 <｜Assistant｜>,
4 <think>, 5 </think>, then one token per byte that can occur in UTF-8 (243 of the 256: never 0xC0, 0xC1, 0xF5..0xFF),
then merges learned deterministically from a fixed English text until vocab_size entries are used. The
pre-tokenizer is DeepSeek-V3's (deepseek-spec §5.1); the chat template is R1's.

Usage: make_tokenizer.py --vocab-size N --out DIR [--text FILE]

--text learns the merges from a corpus instead (a .txt, or a .jsonl whose lines have "text"), split into pieces as
the pre-tokenizer splits ASCII text: letters with an optional leading space, digits in groups of up to three,
punctuation runs, whitespace.
"""
import argparse
import collections
import json
import os
import re

BOS, EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
ADDED = [(BOS, True), (EOS, True), ("<｜User｜>", False), ("<｜Assistant｜>", False), ("<think>", False),
         ("</think>", False)]

# deepseek-spec §5.1: the three Split patterns of the DeepSeek-V3 pre-tokenizer.
SPLITS = [
    r"\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
]

TRAINING_TEXT = """
The quick brown fox jumps over the lazy dog. What is two plus two? Two plus two is four. Think step by step,
then answer. The answer is the number that makes the equation true. We add the numbers and check the result.
In the beginning the model knows nothing; after training it predicts the next token of the text it reads.
"""


def byte_alphabet():
    """GPT-2's byte-to-character map: printable bytes map to themselves, the others to U+0100 onward, in order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def valid_utf8_byte(b):
    return not (b in (0xC0, 0xC1) or b >= 0xF5)


ASCII_PIECES = re.compile(r" ?[A-Za-z]+|[0-9]{1,3}| ?[^\sA-Za-z0-9]+|\s+")


def corpus_words(text, alphabet):
    """Pieces of a corpus (ASCII_PIECES) and their counts, as tuples of byte-alphabet symbols."""
    words = collections.Counter()
    for piece in ASCII_PIECES.findall(text):
        words[tuple(alphabet[b] for b in piece.encode())] += 1
    return words


def learn_merges(n_merges, alphabet, corpus=None):
    """Greedy BPE on TRAINING_TEXT split at spaces (a space joins the word after it), or on the pieces of `corpus`;
    ties go to the smaller pair."""
    words = collections.Counter()
    if corpus is not None:
        words = corpus_words(corpus, alphabet)
    else:
        for w in TRAINING_TEXT.split():
            words[tuple(alphabet[b] for b in (" " + w).encode())] += 1
    merges = []
    while len(merges) < n_merges:
        pairs = collections.Counter()
        for w, n in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = collections.Counter()
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] += n
        words = merged
    return merges


def write_tokenizer(out_dir, vocab_size, chat_template, corpus=None):
    alphabet = byte_alphabet()
    byte_tokens = [alphabet[b] for b in range(256) if valid_utf8_byte(b)]
    n_fixed = len(ADDED) + len(byte_tokens)
    if vocab_size < n_fixed:
        raise SystemExit(f"vocab_size {vocab_size} is smaller than the {n_fixed} fixed tokens")
    merges = learn_merges(vocab_size - n_fixed, alphabet, corpus)
    vocab = {}
    for i, (content, _) in enumerate(ADDED):
        vocab[content] = i
    for t in byte_tokens:
        vocab[t] = len(vocab)
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": s} for i, (c, s) in enumerate(ADDED)],
        "normalizer": {"type": "Sequence", "normalizers": []},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            *({"type": "Split", "pattern": {"Regex": p}, "behavior": "Isolated", "invert": False} for p in SPLITS),
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": [f"{a} {b}" for a, b in merges]},
    }
    token = lambda c: {"__type": "AddedToken", "content": c, "lstrip": False, "normalized": True, "rstrip": False,
                       "single_word": False}
    config = {"add_bos_token": True, "add_eos_token": False, "bos_token": token(BOS), "eos_token": token(EOS),
              "pad_token": token(EOS), "clean_up_tokenization_spaces": False, "legacy": True,
              "model_max_length": 16384, "tokenizer_class": "LlamaTokenizerFast", "unk_token": None,
              "chat_template": chat_template}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False, indent=1)
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)
    return len(vocab)


def r1_chat_template():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "tests", "tokenizer", "templates", "deepseek_r1.jinja"),
              encoding="utf-8") as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab-size", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--text", default=None, help="learn the merges from this .txt or .jsonl corpus")
    args = ap.parse_args()
    corpus = None
    if args.text:
        with open(args.text, encoding="utf-8") as f:
            raw = f.read()
        if args.text.endswith(".jsonl"):
            corpus = "\n".join(json.loads(l)["text"] for l in raw.splitlines() if l.strip())
        else:
            corpus = raw
    n = write_tokenizer(args.out, args.vocab_size, r1_chat_template(), corpus)
    print(f"tokenizer: {n} entries in {args.out}")


if __name__ == "__main__":
    main()

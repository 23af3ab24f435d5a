#!/usr/bin/python3
"""Generates whale's training corpus: short English stories and arithmetic with worked answers, from a seeded
grammar, so that anyone can regenerate exactly the text the documented runs used (docs/training.md).

The text has structure a small model can learn at several depths: spelling and word order (first), agreement of
names, pronouns and objects across a story (needs attention over tens of tokens), and sums and differences of
small numbers (needs the digits of both operands).

Usage: make_corpus.py --out FILE.jsonl [--docs N] [--seed S]
writes one {"text": ...} object per line (a story, or a block of arithmetic questions).
"""
import argparse
import json
import random

NAMES = [("Ann", "she", "her"), ("Ben", "he", "his"), ("Cara", "she", "her"), ("Dan", "he", "his"),
         ("Eva", "she", "her"), ("Finn", "he", "his"), ("Gia", "she", "her"), ("Hugo", "he", "his"),
         ("Ivy", "she", "her"), ("Jack", "he", "his"), ("Kim", "she", "her"), ("Leo", "he", "his"),
         ("Mia", "she", "her"), ("Ned", "he", "his"), ("Olga", "she", "her"), ("Paul", "he", "his")]
ANIMALS = ["cat", "dog", "fox", "owl", "hen", "frog", "duck", "bear", "goat", "mouse", "horse", "rabbit"]
OBJECTS = ["ball", "kite", "book", "cup", "hat", "drum", "box", "bell", "map", "lamp", "boat", "key"]
FRUITS = ["apples", "pears", "plums", "cookies", "shells", "stones", "coins", "stars", "eggs", "nuts"]
PLACES = ["park", "farm", "shop", "river", "garden", "forest", "beach", "hill", "lake", "school"]
COLORS = ["red", "blue", "green", "yellow", "brown", "white", "black", "pink", "gray", "orange"]
SIZES = ["small", "big", "little", "old", "new", "shiny", "soft", "tall"]
FEELINGS = ["happy", "sad", "tired", "glad", "scared", "proud", "calm", "hungry"]
WEATHER = ["The sun was warm.", "It was a cold day.", "The wind was strong.", "It began to rain.",
           "The sky was clear.", "Snow fell on the ground."]


def cap(s):
    return s[0].upper() + s[1:]


def story(rng):
    name, he, his = rng.choice(NAMES)
    friend, fhe, _ = rng.choice([n for n in NAMES if n[0] != name])
    animal, obj, place = rng.choice(ANIMALS), rng.choice(OBJECTS), rng.choice(PLACES)
    color, size, feeling = rng.choice(COLORS), rng.choice(SIZES), rng.choice(FEELINGS)
    fruit = rng.choice(FRUITS)
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    lines = [
        f"{name} had a {size} {color} {obj}.",
        rng.choice(WEATHER),
        f"One day {he} went to the {place} with {friend}.",
        f"At the {place}, they saw a {animal}.",
        f"The {animal} looked at the {obj} and wanted it.",
    ]
    if rng.random() < 0.5:
        lines += [f"{name} gave the {obj} to the {animal}.", f"The {animal} was {feeling}, and so was {name}."]
    else:
        lines += [f"{name} kept the {obj}, but {he} gave the {animal} some {fruit}.",
                  f"The {animal} ate the {fruit} and felt {feeling}."]
    lines += [f"{friend} had {a} {fruit}. {cap(fhe)} found {b} more.",
              f"Now {fhe} had {a + b} {fruit}."]
    lines.append(rng.choice([f"Then {name} and {friend} went home.",
                             f"{name} smiled at {friend}, and they walked home from the {place}.",
                             f"When it was late, {name} took {his} {obj} and went home."]))
    return " ".join(lines)


def arithmetic(rng):
    out = []
    for _ in range(rng.randint(4, 8)):
        kind = rng.random()
        if kind < 0.45:
            a, b = rng.randint(0, 99), rng.randint(0, 99)
            out.append(f"Q: What is {a} + {b}? A: {a} + {b} = {a + b}.")
        elif kind < 0.8:
            a = rng.randint(0, 99)
            b = rng.randint(0, a)
            out.append(f"Q: What is {a} - {b}? A: {a} - {b} = {a - b}.")
        else:
            a, b = rng.randint(0, 12), rng.randint(0, 12)
            out.append(f"Q: What is {a} times {b}? A: {a} * {b} = {a * b}.")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    chars = 0
    with open(args.out, "w", encoding="utf-8") as f:
        for _ in range(args.docs):
            text = story(rng) if rng.random() < 0.7 else arithmetic(rng)
            chars += len(text)
            f.write(json.dumps({"text": text}) + "\n")
    print(f"corpus: {args.docs} documents, {chars} characters in {args.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Compares `whale logits` against the float64 PyTorch reference (deepseek_ref.py).

Usage:
  /usr/bin/python3 scripts/reference/check_logits.py --whale BIN --model DIR [--tokens 5,17,42] [--tol 1e-3]
      [--chunks none,1,7] [--attention absorbed,naive] [--timeout SECONDS] [--activations f32|bf16]

Computes the reference once, then runs
  BIN logits --model DIR --tokens T1,T2,... --activations f32|bf16 [--chunk N] [--attention A]
for every chunk in --chunks ("none" = no --chunk flag) and every A in --attention, and checks for each run: same
token list, same [T, vocab] shape, all values finite, max |whale - reference| <= tol. Also fails if the reference itself
is trivial (max |logit| <= 1 or std <= 0.1), so that the comparison can fail at all.
whale runs with --activations f32 (not its default: the exact products) and is compared with the exact reference.
With --activations bf16, whale runs with that flag and each run is compared with the reference whose BF16 products
round their inputs to bf16 where whale's JSON says it rounded them ("activations": "bf16"), else with the exact one.
Runs of the same attention in chunks shorter than 64 tokens (the few-query forms) must also agree bit for bit with
each other: a token's logits do not depend on how its prompt is chunked.
Prints one line per run; exit status 0 if everything passes, 1 otherwise.

Default tokens: 19 ids from a fixed seeded rng, including 0 and vocab_size-1.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_ref  # noqa: E402


def default_tokens(vocab, n=19):
    rng = np.random.default_rng(20240917)
    toks = rng.integers(2, max(vocab - 1, 3), size=n).tolist()
    toks[0] = 0
    toks[n // 2] = vocab - 1
    return [int(t) for t in toks]


def parse_json_output(stdout):
    """The whole stdout should be one JSON object; tolerate extra lines by taking the last line that parses."""
    text = stdout.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise ValueError("no JSON object found in stdout (first 300 chars: %r)" % text[:300])


def run_whale(whale, model, tokens, chunk, attention, timeout, activations):
    cmd = [whale, "logits", "--model", model, "--tokens", ",".join(str(t) for t in tokens)]
    if activations is not None:  # None: whale's default
        cmd += ["--activations", activations]
    if chunk is not None:
        cmd += ["--chunk", str(chunk)]
    if attention is not None:
        cmd += ["--attention", attention]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s: {' '.join(cmd)}", time.time() - t0
    except OSError as e:
        return None, f"cannot run {whale}: {e}", time.time() - t0
    dt = time.time() - t0
    if p.returncode != 0:
        err = p.stderr.decode("utf-8", "replace").strip()
        return None, f"exit status {p.returncode}: {' '.join(cmd)}\n  stderr: {err}", dt
    try:
        return parse_json_output(p.stdout.decode("utf-8", "replace")), None, dt
    except ValueError as e:
        return None, f"bad output: {e}", dt


def check_default(args, tokens, attn, logits):
    """Whale with no --activations against its run with --activations args.default (logits): bitwise equal."""
    out, err, dt = run_whale(args.whale, args.model, tokens, None, attn, args.timeout, None)
    label = f"attention={attn:<8} chunk=none no --activations"
    if err is None and logits is None:
        err = f"the run with --activations {args.default} gave no logits to compare with"
    if err is None:
        got = np.array(out.get("logits"), dtype=np.float64) if isinstance(out, dict) else None
        if got is None or got.shape != logits.shape or not np.array_equal(got, logits):
            err = f"not bitwise the logits of --activations {args.default}: the default is not {args.default}"
    print(f"{label} {'PASS' if err is None else 'FAIL (' + err + ')'}  ({dt:.1f} s)")
    return err is None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--whale", required=True, help="path of the whale binary")
    ap.add_argument("--model", required=True, help="Hugging Face model directory")
    ap.add_argument("--tokens", default=None, help="comma-separated token ids (default: 19 fixed ids)")
    ap.add_argument("--tol", type=float, default=1e-3, help="max allowed |whale - reference| per logit")
    ap.add_argument("--chunks", default="none,1,7", help="comma list of --chunk values; 'none' = flag omitted")
    ap.add_argument("--attention", default="absorbed,naive", help="comma list of --attention values")
    ap.add_argument("--timeout", type=float, default=600, help="seconds allowed per whale run")
    ap.add_argument("--activations", choices=["f32", "bf16"], default="f32",
                    help="run whale with --activations f32 (the default: the exact products, compared with the exact "
                         "reference) or bf16; with bf16, where whale reports that it rounded them (its JSON's "
                         "\"activations\"), compare with a reference that rounds the same products' inputs to bf16 "
                         "(and fail unless that rounding moves the logits by more than --tol, so that the check can "
                         "tell the two apart)")
    ap.add_argument("--default", choices=["f32", "bf16"], default=None,
                    help="also run whale once with no --activations (the first attention, no --chunk) and require "
                         "bitwise the logits of its run with --activations DEFAULT, the default it documents")
    args = ap.parse_args()
    if args.default is not None and args.default != args.activations:
        ap.error(f"--default {args.default} compares with the run of --activations {args.default}: pass that too")

    if os.sep not in args.whale and shutil.which(args.whale):
        args.whale = shutil.which(args.whale)
    if not (os.path.isfile(args.whale) and os.access(args.whale, os.X_OK)):
        print(f"check_logits: whale binary {args.whale!r} does not exist or is not executable", file=sys.stderr)
        return 1
    if not os.path.isfile(os.path.join(args.model, "config.json")):
        print(f"check_logits: {args.model!r} has no config.json", file=sys.stderr)
        return 1

    model = deepseek_ref.Model(args.model)
    vocab = model.cfg.vocab
    tokens = deepseek_ref.parse_tokens(args.tokens) if args.tokens else default_tokens(vocab)
    chunks = [None if c.strip() == "none" else int(c) for c in args.chunks.split(",") if c.strip()]
    attns = [a.strip() for a in args.attention.split(",") if a.strip()]

    t0 = time.time()
    import torch
    with torch.no_grad():
        ref = model.forward(tokens).numpy()
    ref_max, ref_std = float(np.abs(ref).max()), float(ref.std())
    ok = True
    triv = "ok" if (ref_max > 1.0 and ref_std > 0.1) else "TRIVIAL"
    print(f"reference: {len(tokens)} tokens x {vocab} vocab, max|logit| {ref_max:.4g}, std {ref_std:.4g} "
          f"({time.time() - t0:.1f} s) {triv}")
    if triv != "ok":
        print("FAIL: the reference logits are trivial (need max|logit| > 1 and std > 0.1); the check cannot fail")
        ok = False

    ref_bf16 = None  # the reference with bf16-rounded activations, computed when a run first needs it

    def reference_for(out):
        nonlocal ref_bf16
        said = out.get("activations") if isinstance(out, dict) else None
        if args.activations == "f32":
            if said != "f32":
                return None, f"whale was run with --activations f32 but its JSON says \"activations\": {said!r}"
            return ref, None
        if said == "f32":
            return ref, None
        if said != "bf16":
            return None, f"whale's JSON has no \"activations\": \"bf16\" or \"f32\" (got {said!r})"
        if ref_bf16 is None:
            t1 = time.time()
            with torch.no_grad():
                # In f32, as whale computes: each rounding to bf16 then goes the way whale's does, where in f64 the
                # values within f32's error of a bf16 rounding boundary round the other way (about 1 in 20000), and
                # a random test model amplifies each such step of 2^-8 far beyond --tol.
                ref_bf16 = deepseek_ref.Model(args.model, bf16_activations=True, dtype=torch.float32).forward(
                    tokens).double().numpy()
            moved = float(np.abs(ref_bf16 - ref).max())
            print(f"reference with bf16 activations: max|d| {moved:.3e} from the exact one ({time.time() - t1:.1f} s)")
            if not moved > args.tol:
                return None, f"bf16 rounding moves the reference by only {moved:.3e} <= tol: the check cannot tell"
        return ref_bf16, None

    for attn in attns:
        chunked = None  # (chunk, logits) of this attention's first run in chunks of fewer than 64 tokens
        for chunk in chunks:
            label = f"attention={attn:<8} chunk={'none' if chunk is None else chunk:<4}"
            out, err, dt = run_whale(args.whale, args.model, tokens, chunk, attn, args.timeout, args.activations)
            expected, why = (None, None) if err else reference_for(out)
            if why:
                err = why
            if err:
                print(f"{label} FAIL ({err})")
                ok = False
                continue
            problems = []
            got_tokens = out.get("tokens") if isinstance(out, dict) else None
            if got_tokens != tokens:
                problems.append(f"tokens {got_tokens} != {tokens}")
            try:
                got = np.array(out.get("logits"), dtype=np.float64)
            except (TypeError, ValueError) as e:
                got = None
                problems.append(f"logits not a numeric matrix: {e}")
            maxd = float("nan")
            if got is not None:
                if got.shape != expected.shape:
                    problems.append(f"shape {got.shape} != {expected.shape}")
                elif not np.all(np.isfinite(got)):
                    problems.append(f"{int((~np.isfinite(got)).sum())} non-finite logits")
                else:
                    maxd = float(np.abs(got - expected).max())
                    if expected is ref_bf16 and not maxd <= args.tol:
                        # Even in f32 an occasional activation rounds the other way (the two sum in different
                        # orders), and a random model amplifies each such step of 2^-8: no per-logit bound holds over
                        # many positions. Instead whale must be much nearer the rounded reference than the exact one
                        # (it rounds the same products' inputs) and pick the same top token almost everywhere.
                        near = float(np.abs(got - expected).mean())
                        far = float(np.abs(got - ref).mean())
                        top1 = float((got.argmax(axis=1) == expected.argmax(axis=1)).mean())
                        print(f"{label} max|d| {maxd:.3e}; mean|d| {near:.3e} to the rounded reference, {far:.3e} to "
                              f"the exact one; top-1 agreement {100 * top1:.1f}%")
                        if near > 0.5 * far or top1 < 0.95:
                            problems.append(f"not near enough the rounded reference (mean|d| {near:.3e} > half "
                                            f"of {far:.3e}, or top-1 {100 * top1:.1f}% < 95%)")
                    elif not maxd <= args.tol:
                        pos, col = np.unravel_index(int(np.abs(got - expected).argmax()), expected.shape)
                        problems.append(f"max|d| {maxd:.3e} > tol {args.tol:g} at position {pos}, id {col} "
                                        f"(whale {got[pos, col]:.6g}, ref {expected[pos, col]:.6g})")
            if got is not None and not problems and chunk is not None and chunk < 64:
                if chunked is None:
                    chunked = (chunk, got)
                elif not np.array_equal(got, chunked[1]):
                    problems.append(f"not bitwise equal to the run in chunks of {chunked[0]} "
                                    f"(max|d| {float(np.abs(got - chunked[1]).max()):.3e})")
            status = "PASS" if not problems else "FAIL"
            ok &= not problems
            print(f"{label} max|d| {maxd:.3e}  {status}  ({dt:.1f} s)" + ("" if not problems else
                                                                          "  " + "; ".join(problems)))
            if args.default is not None and attn == attns[0] and chunk is None:
                ok &= check_default(args, tokens, attn, got)
    print("check_logits: " + ("all PASS" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

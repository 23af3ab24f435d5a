#!/usr/bin/python3
"""Float64 PyTorch reference of `whale train` (docs/training.md): loss, gradients, optimizer, routing-bias balancing.

Written from docs/training.md and deepseek-spec.md §2, §4; the forward pass reuses deepseek_ref.py's building blocks
(MLA, routing, experts) with the checkpoint's weights turned into autograd leaves.

Usage:
  train_ref.py grads   --model DIR --data FILE.jsonl --seq-len T --batch-size B [--val-fraction 0.05]
                       [--micro-batch M] [--mtp-weight L] [--balance-alpha A] --out GRADS.safetensors
      gradient of L = L_main + L*L_mtp + L_bal on micro-batch M (sequential layout), one F64 tensor per parameter
      named by its checkpoint name; prints {"loss":..,"main":..,"mtp":..,"balance":..}.
  train_ref.py train   --model DIR --data FILE.jsonl --seq-len T --batch-size B --steps S [--optimizer adamw|sgd]
                       [--lr 3e-4] [--beta1 0.9] [--beta2 0.95] [--eps 1e-8] [--weight-decay 0.1] [--clip 1.0]
                       [--warmup 0] [--min-lr-ratio 0.1] [--grad-accum 1] [--bias-update-rate 0.001]
                       [--mtp-weight L] [--balance-alpha A] [--val-fraction 0.05] --out WEIGHTS.safetensors
      S optimizer steps on the sequential data order; writes every parameter and routing bias (F64); prints
      {"step":s,"loss":..,"lr":..} per step.
  train_ref.py compare --whale A.safetensors --ref B.safetensors [--rtol 1e-4] [--skip REGEX]
      per tensor of B: err = max|a-b| / max|b|; table sorted by err (worst first); exit 1 if any err > rtol.
      A or B may also be a model directory (FP8 weights are dequantized).
  train_ref.py fdcheck --model DIR --data FILE.jsonl --seq-len T --batch-size B [--mtp-weight L]
                       [--balance-alpha A] [--samples 3] [--seed 0] [--eps 1e-6] [--tol 1e-5]
      self-test: autograd gradient vs. central finite differences of the total loss on a few entries per parameter.

Parameters: every checkpoint tensor except the FP8 `*.weight_scale_inv` partners (the parameter is the dequantized
weight), the routing biases `*.e_score_correction_bias` (buffers, updated by the balancing rule, never by gradients)
and the MTP layer's copies `model.layers.N.embed_tokens.weight` / `model.layers.N.shared_head.head.weight` (the MTP
module reads `model.embed_tokens.weight` / `lm_head.weight`, whose gradients include its contribution).
Only jsonl data with "input_ids" is supported ("text" would need whale's tokenizer).
"""

import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import deepseek_ref as dsr  # noqa: E402
import tensor_io as tio  # noqa: E402

DT = torch.float64
BIAS_SUFFIX = ".e_score_correction_bias"


# ----------------------------------------------------------------------------------------------------------------
# Model with trainable weights
# ----------------------------------------------------------------------------------------------------------------

class TrainModel(dsr.Model):
    """deepseek_ref.Model whose weights are float64 autograd leaves held in memory.

    self.params: name -> leaf (requires_grad) for every parameter; self.buffers: routing biases (also leaves with
    requires_grad, only so that a gradient reaching them would be caught by check_no_bias_grad())."""

    def __init__(self, model_dir):
        super().__init__(model_dir)
        c = self.cfg
        self.n_mtp = int(self.ckpt.config.get("num_nextn_predict_layers") or 0)
        self.mtp_copies = {}  # MTP copy name -> main tensor name
        for k in range(self.n_mtp):
            p = f"model.layers.{c.n_layers + k}."
            self.mtp_copies[p + "embed_tokens.weight"] = "model.embed_tokens.weight"
            self.mtp_copies[p + "shared_head.head.weight"] = "lm_head.weight"
        names = set(self.ckpt.where)
        skip = set(self.mtp_copies)
        for n in names:
            # block-scale partners of FP8 weights are part of their weight (whale q8/q4 keep theirs inside the U8)
            if n.endswith("_scale_inv") and n[: -len("_scale_inv")] in names:
                skip.add(n)
        self.params = {}
        self.buffers = {}
        for n in sorted(names - skip):
            t = torch.from_numpy(np.ascontiguousarray(self.ckpt.float64(n))).to(DT).requires_grad_(True)
            (self.buffers if n.endswith(BIAS_SUFFIX) else self.params)[n] = t
        self.routes = None  # (layer, idx, scores) per route() call while microbatch_loss records them
        self.record_scores = False  # whether those records carry the router scores (balance loss only)

    def w(self, name):
        name = self.mtp_copies.get(name, name)
        t = self.params.get(name)
        if t is None:
            t = self.buffers.get(name)
        if t is None:
            raise KeyError(f"tensor {name} not in checkpoint {self.ckpt.dir}")
        return t

    # routing ---------------------------------------------------------------------------------------------------
    def router_scores(self, x, layer):
        """Router scores s (after softmax / sigmoid, without the bias) [T, E], as deepseek_ref.route computes them."""
        logits = self.linear(x, f"model.layers.{layer}.mlp.gate.weight")
        if self.cfg.scoring == "softmax":
            return torch.softmax(logits, dim=-1)
        if self.cfg.scoring == "sigmoid":
            return torch.sigmoid(logits)
        raise ValueError(f"unsupported scoring_func {self.cfg.scoring!r}")

    def route(self, x, layer, use_bias=True, trace=None):
        # The selection and gate weights are deepseek_ref's own (the inference path); we only record the choice and,
        # for the balance loss, the scores (recomputed: route() does not return them).
        idx, wts = super().route(x, layer, use_bias, trace)
        if self.routes is not None:
            scores = self.router_scores(x, layer) if self.record_scores else None
            self.routes.append((layer, idx, scores))
        return idx, wts

    # layers ----------------------------------------------------------------------------------------------------
    def decoder_layer(self, x, layer):
        """Pre-norm residual block at positions 0..len(x)-1 (the same body as deepseek_ref.Model.forward's loop)."""
        p = f"model.layers.{layer}."
        x = x + self.attention(self.rmsnorm(x, p + "input_layernorm.weight"), layer, "naive")
        xn = self.rmsnorm(x, p + "post_attention_layernorm.weight")
        if self.cfg.is_moe(layer):
            return x + self.moe(xn, layer)
        return x + self.mlp(xn, p + "mlp.")

    def check_no_bias_grad(self):
        for n, b in self.buffers.items():
            assert b.grad is None or not bool(torch.any(b.grad != 0)), f"{n} received a gradient"
            b.grad = None


class Loss:
    """Loss of one micro-batch and what the optimizer step needs from it."""

    def __init__(self, total, main, mtp, balance, selections, counts):
        self.total = total  # tensor (graph attached unless computed under no_grad)
        self.main, self.mtp, self.balance = main, mtp, balance  # floats; mtp unweighted, balance includes alpha
        self.selections = selections  # list of idx tensors in call order (for fdcheck's selection-change test)
        self.counts = counts  # layer -> float64 [E] (token, slot) assignment counts


def microbatch_loss(model, windows, mtp_weight=0.0, balance_alpha=0.0):
    """L = L_main + mtp_weight * L_mtp + L_bal for windows [B, T+1] (docs/training.md, "Loss")."""
    c = model.cfg
    B, T = windows.shape[0], windows.shape[1] - 1
    use_mtp = mtp_weight > 0 and model.n_mtp >= 1
    if use_mtp and model.n_mtp != 1:
        raise SystemExit(f"num_nextn_predict_layers = {model.n_mtp}: only 1 is supported")
    if use_mtp and T < 2:
        raise SystemExit("the MTP loss needs --seq-len >= 2")
    N = c.n_layers
    emb = model.w("model.embed_tokens.weight")
    main_sum = 0.0
    mtp_sum = 0.0
    bal_sum = 0.0
    selections = []
    counts = {}
    model.record_scores = balance_alpha > 0
    for b in range(B):
        ids = windows[b]
        model.routes = []
        # main model on ids 0..T-1 at positions 0..T-1, scored on ids 1..T
        h = emb[ids[:T]]
        for L in range(N):
            h = model.decoder_layer(h, L)
        hn = model.rmsnorm(h, "model.norm.weight")
        main_sum = main_sum + F.cross_entropy(model.linear(hn, "lm_head.weight"), ids[1:], reduction="sum")
        if use_mtp:
            # u_t = eh_proj [enorm(E[id_{t+1}]); hnorm(h_t)], t = 0..T-2; embedding first (spec §4)
            p = f"model.layers.{N}."
            e = model.rmsnorm(emb[ids[1:T]], p + "enorm.weight")
            hh = model.rmsnorm(hn[: T - 1], p + "hnorm.weight")
            u = model.linear(torch.cat([e, hh], dim=-1), p + "eh_proj.weight")
            z = model.decoder_layer(u, N)
            logits = model.linear(model.rmsnorm(z, p + "shared_head.norm.weight"), "lm_head.weight")
            mtp_sum = mtp_sum + F.cross_entropy(logits, ids[2:], reduction="sum")
        for layer, idx, scores in model.routes:
            selections.append(idx)
            Tp = idx.shape[0]  # T in the main model, T-1 in the MTP layer
            cnt = torch.bincount(idx.reshape(-1), minlength=c.E).to(DT)
            counts[layer] = counts.get(layer, torch.zeros(c.E, dtype=DT)) + cnt
            if balance_alpha > 0:
                sn = scores / scores.sum(-1, keepdim=True)
                P = sn.mean(0)
                f = cnt * (c.E / (c.K * Tp))  # a constant: built from the selection only
                bal_sum = bal_sum + balance_alpha * (f * P).sum()
        model.routes = None
    main = main_sum / (B * T)
    mtp = mtp_sum / (B * (T - 1)) if use_mtp else torch.zeros((), dtype=DT)
    bal = bal_sum / B if balance_alpha > 0 else torch.zeros((), dtype=DT)
    total = main + mtp_weight * mtp + bal if use_mtp else main + bal
    return Loss(total, float(main), float(mtp), float(bal), selections, counts)


# ----------------------------------------------------------------------------------------------------------------
# Data (docs/training.md, "Data and batch layout")
# ----------------------------------------------------------------------------------------------------------------

def load_stream(path, config):
    """Concatenated ids of every document, each followed by eos_token_id when config.json has one (>= 0)."""
    if not path.endswith(".jsonl"):
        raise SystemExit(f"{path}: train_ref.py reads only .jsonl files whose lines have \"input_ids\"")
    eos = config.get("eos_token_id")
    if eos is not None and not isinstance(eos, int):
        raise SystemExit(f"config.json eos_token_id {eos!r}: expected one integer")
    vocab = config["vocab_size"]
    stream = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if not isinstance(obj, dict) or "input_ids" not in obj:
                has_text = isinstance(obj, dict) and "text" in obj
                what = "\"text\" (needs whale's tokenizer)" if has_text else "no input_ids"
                raise SystemExit(f"{path}:{lineno}: {what}; train_ref.py supports only \"input_ids\" lines")
            ids = obj["input_ids"]
            if not all(isinstance(t, int) and 0 <= t < vocab for t in ids):
                raise SystemExit(f"{path}:{lineno}: input_ids must be integers in [0, {vocab})")
            stream.extend(ids)
            if eos is not None and eos >= 0:
                stream.append(eos)
    return stream


class Data:
    def __init__(self, path, config, seq_len, batch_size, val_fraction):
        if not 0 <= val_fraction < 1:
            raise SystemExit("--val-fraction must be in [0, 1)")
        stream = load_stream(path, config)
        n = len(stream)
        n_val = math.floor(n * val_fraction)
        self.train = torch.tensor(stream[: n - n_val], dtype=torch.long)
        self.T, self.B = seq_len, batch_size
        if seq_len < 1 or batch_size < 1:
            raise SystemExit("--seq-len and --batch-size must be >= 1")
        if len(self.train) < seq_len + 1:
            raise SystemExit(f"training split has {len(self.train)} ids, fewer than --seq-len + 1 = {seq_len + 1}")

    def starts(self, m):
        """Sequential order: window b of micro-batch m starts at ((m*B + b)*T) mod (n_train - T)."""
        n = len(self.train)
        return [((m * self.B + b) * self.T) % (n - self.T) for b in range(self.B)]

    def microbatch(self, m):
        """[B, T+1] ids of micro-batch m."""
        return torch.stack([self.train[s: s + self.T + 1] for s in self.starts(m)])


# ----------------------------------------------------------------------------------------------------------------
# Optimizer pieces (docs/training.md, "Optimizer" and "Balancing by the routing bias")
# ----------------------------------------------------------------------------------------------------------------

def lr_at(s, lr, warmup, steps, min_lr_ratio):
    if s < warmup:
        return lr * (s + 1) / warmup
    lr_min = lr * min_lr_ratio
    return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup))) / 2


def update_bias(model, counts, rate):
    """b_i -= rate where c_i > mean c, += rate where c_i < mean c, for each layer whose router has a bias.
    Returns layer -> MaxVio (max_i c_i / mean c - 1)."""
    maxvio = {}
    with torch.no_grad():
        for layer, c in sorted(counts.items()):
            name = f"model.layers.{layer}.mlp.gate{BIAS_SUFFIX}"
            if name not in model.buffers:
                continue
            cbar = c.sum() / c.numel()
            if cbar > 0:
                maxvio[layer] = float(c.max() / cbar - 1)
            b = model.buffers[name]
            b -= rate * (c > cbar).to(DT)
            b += rate * (c < cbar).to(DT)
    return maxvio


# ----------------------------------------------------------------------------------------------------------------
# safetensors output / input
# ----------------------------------------------------------------------------------------------------------------

def write_f64(path, tensors):
    """tensors: name -> float64 torch tensor; written as F64 in name order."""
    arrays = {n: np.ascontiguousarray(t.detach().numpy().astype("<f8")) for n, t in tensors.items()}
    entries = [(n, "F64", arrays[n].shape) for n in sorted(arrays)]
    tio.write_safetensors(path, entries, lambda n: arrays[n], {"format": "pt"})


def open_tensors(path):
    """(names, getter name -> float64 numpy) for a .safetensors file or a model directory."""
    if os.path.isdir(path):
        ck = tio.Checkpoint(path)
        names = [n for n in ck.where if not (n.endswith("_scale_inv") and n[: -len("_scale_inv")] in ck.where)]
        return names, ck.float64
    f = tio.SafetensorsFile(path)
    return f.names(), f.float64


# ----------------------------------------------------------------------------------------------------------------
# Subcommands
# ----------------------------------------------------------------------------------------------------------------

def add_data_args(ap):
    ap.add_argument("--model", "--init", dest="model", required=True, help="Hugging Face model directory")
    ap.add_argument("--data", required=True, help=".jsonl file, one {\"input_ids\": [...]} per line")
    ap.add_argument("--seq-len", type=int, required=True)
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--val-fraction", type=float, default=0.05)
    ap.add_argument("--data-order", default="sequential", choices=["sequential"],
                    help="only the sequential order (the random one is whale's generator)")
    ap.add_argument("--mtp-weight", type=float, default=0.0)
    ap.add_argument("--balance-alpha", type=float, default=0.0)


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"))


def all_grads(model):
    return {n: (p.grad if p.grad is not None else torch.zeros_like(p)) for n, p in model.params.items()}


def cmd_grads(args):
    model = TrainModel(args.model)
    data = Data(args.data, model.ckpt.config, args.seq_len, args.batch_size, args.val_fraction)
    loss = microbatch_loss(model, data.microbatch(args.micro_batch), args.mtp_weight, args.balance_alpha)
    loss.total.backward()
    model.check_no_bias_grad()
    write_f64(args.out, all_grads(model))
    print(dumps({"loss": float(loss.total), "main": loss.main, "mtp": loss.mtp, "balance": loss.balance}))


def cmd_train(args):
    model = TrainModel(args.model)
    data = Data(args.data, model.ckpt.config, args.seq_len, args.batch_size, args.val_fraction)
    A = args.grad_accum
    if A < 1 or args.steps < 0:
        raise SystemExit("--grad-accum must be >= 1 and --steps >= 0")
    params = list(model.params.values())
    opt = None
    if args.optimizer == "adamw":
        # PyTorch AdamW: decoupled decay w *= 1 - lr*wd, bias-corrected moments, eps added after the sqrt
        groups = [{"params": [p for p in params if p.dim() == 2], "weight_decay": args.weight_decay},
                  {"params": [p for p in params if p.dim() != 2], "weight_decay": 0.0}]
        opt = torch.optim.AdamW(groups, lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps)
    for s in range(args.steps):
        lr = lr_at(s, args.lr, args.warmup, args.steps, args.min_lr_ratio)
        # every parameter gets a gradient (zero for experts nobody chose), so AdamW updates and decays all of them
        # as the contract's "for each parameter" says; a None grad would make torch skip the parameter
        for p in params:
            p.grad = torch.zeros_like(p)
        counts = {}
        total = 0.0
        for a in range(A):
            loss = microbatch_loss(model, data.microbatch(s * A + a), args.mtp_weight, args.balance_alpha)
            (loss.total / A).backward()
            total += float(loss.total)
            for layer, c in loss.counts.items():
                counts[layer] = counts.get(layer, 0) + c
        model.check_no_bias_grad()
        if opt is not None:
            if args.clip > 0:
                torch.nn.utils.clip_grad_norm_(params, args.clip)
            for g in opt.param_groups:
                g["lr"] = lr
            opt.step()
            if args.bias_update_rate > 0:
                maxvio = update_bias(model, counts, args.bias_update_rate)
                if maxvio:
                    print(f"step {s}: MaxVio " + " ".join(f"L{k}={v:.3f}" for k, v in maxvio.items()),
                          file=sys.stderr)
        else:
            with torch.no_grad():
                for p in params:
                    p -= lr * p.grad
        print(dumps({"step": s, "loss": total / A, "lr": lr}), flush=True)
    write_f64(args.out, {**model.params, **model.buffers})


def cmd_compare(args):
    a_names, a_get = open_tensors(args.whale)
    b_names, b_get = open_tensors(args.ref)
    skip = re.compile(args.skip) if args.skip else None
    a_set = set(a_names)
    rows = []  # (err, maxdiff, maxref, shape, name, note)
    missing = []
    for n in b_names:
        if skip and skip.search(n):
            continue
        if n not in a_set:
            missing.append(n)
            continue
        a, b = a_get(n), b_get(n)
        if a.shape != b.shape:
            rows.append((math.inf, math.nan, math.nan, b.shape, n, f"shape {a.shape} != {b.shape}"))
            continue
        diff = float(np.max(np.abs(a - b))) if b.size else 0.0
        ref = float(np.max(np.abs(b))) if b.size else 0.0
        err = diff / max(ref, 1e-30)
        rows.append((err if err == err else math.inf, diff, ref, b.shape, n, ""))
    extra = sorted(n for n in a_set - set(b_names) if not (skip and skip.search(n)))
    rows.sort(key=lambda r: -r[0])
    print(f"{'err':>10} {'max|a-b|':>10} {'max|b|':>10}  {'shape':<14} name")
    for err, diff, ref, shape, n, note in rows:
        print(f"{err:10.3e} {diff:10.3e} {ref:10.3e}  {str(list(shape)):<14} {n}" + (f"  ({note})" if note else ""))
    for n in extra:
        print(f"note: {n} is in {args.whale} but not in {args.ref}")
    for n in missing:
        print(f"missing: {n} is in {args.ref} but not in {args.whale}")
    if missing:
        print(f"FAIL: {len(missing)} tensor(s) missing from {args.whale}, e.g. {missing[0]}", file=sys.stderr)
        sys.exit(1)
    if rows and rows[0][0] > args.rtol:
        print(f"FAIL: {rows[0][4]} err {rows[0][0]:.3e} > rtol {args.rtol:g}"
              f" ({sum(r[0] > args.rtol for r in rows)} tensor(s) over)", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {len(rows)} tensors, max err {rows[0][0] if rows else 0:.3e} <= rtol {args.rtol:g}", file=sys.stderr)


def same_selection(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def cmd_fdcheck(args):
    t0 = time.time()
    model = TrainModel(args.model)
    data = Data(args.data, model.ckpt.config, args.seq_len, args.batch_size, args.val_fraction)
    windows = data.microbatch(args.micro_batch)

    def evaluate():
        with torch.no_grad():
            return microbatch_loss(model, windows, args.mtp_weight, args.balance_alpha)

    loss = microbatch_loss(model, windows, args.mtp_weight, args.balance_alpha)
    loss.total.backward()
    model.check_no_bias_grad()
    base_sel = [s.clone() for s in loss.selections]
    grads = all_grads(model)
    rng = np.random.default_rng(args.seed)
    worst = (0.0, None)
    checked = skipped = 0
    for name in sorted(model.params):
        p = model.params[name]
        g = grads[name].reshape(-1)
        nz = np.flatnonzero(g.numpy() != 0)
        zero = np.flatnonzero(g.numpy() == 0)
        # entries with a gradient, plus one without (its finite difference must vanish as well)
        picks = list(rng.choice(nz, size=min(args.samples, len(nz)), replace=False)) if len(nz) else []
        if len(zero):
            picks.append(int(rng.choice(zero)))
        flat = p.data.view(-1)
        for i in picks:
            i = int(i)
            w0 = float(flat[i])
            flat[i] = w0 + args.eps
            up = evaluate()
            flat[i] = w0 - args.eps
            down = evaluate()
            flat[i] = w0
            # a perturbation that changes a top-k choice differentiates across a jump: not a valid sample
            if not all(same_selection(r.selections, base_sel) for r in (up, down)):
                skipped += 1
                print(f"skip {name}[{i}]: the perturbation changes an expert selection", file=sys.stderr)
                continue
            fd = (float(up.total) - float(down.total)) / (2 * args.eps)
            ad = float(g[i])
            # relative error; below --floor the comparison is absolute (central differences resolve the loss only
            # to ~1e-16 * |L| / eps, ~1e-9 here)
            err = abs(fd - ad) / max(abs(fd), abs(ad), args.floor)
            checked += 1
            if args.verbose:
                print(f"{name}[{i}]: autograd {ad:.9e} fd {fd:.9e} err {err:.2e}", file=sys.stderr)
            if err > worst[0] or worst[1] is None:
                worst = (err, f"{name}[{i}] autograd {ad:.9e} fd {fd:.9e}")
    ok = checked > 0 and worst[0] <= args.tol
    print(dumps({"loss": float(loss.total), "checked": checked, "skipped": skipped, "worst_err": worst[0],
                 "worst": worst[1], "seconds": round(time.time() - t0, 1), "ok": ok}))
    if not ok:
        print(f"FAIL: worst relative error {worst[0]:.3e} > {args.tol:g} at {worst[1]}" if checked
              else "FAIL: no sample checked", file=sys.stderr)
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("grads", help="gradients of one micro-batch")
    add_data_args(g)
    g.add_argument("--micro-batch", type=int, default=0)
    g.add_argument("--out", required=True, help="output .safetensors (F64 gradients)")

    t = sub.add_parser("train", help="optimizer steps")
    add_data_args(t)
    t.add_argument("--steps", type=int, required=True)
    t.add_argument("--optimizer", default="adamw", choices=["adamw", "sgd"])
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--beta1", type=float, default=0.9)
    t.add_argument("--beta2", type=float, default=0.95)
    t.add_argument("--eps", type=float, default=1e-8)
    t.add_argument("--weight-decay", type=float, default=0.1)
    t.add_argument("--clip", type=float, default=1.0)
    t.add_argument("--warmup", type=int, default=0)
    t.add_argument("--min-lr-ratio", type=float, default=0.1)
    t.add_argument("--grad-accum", type=int, default=1)
    t.add_argument("--bias-update-rate", type=float, default=0.001)
    t.add_argument("--out", required=True, help="output .safetensors (F64 weights and routing biases)")

    c = sub.add_parser("compare", help="compare whale's tensors with the reference's")
    c.add_argument("--whale", required=True, help="whale's .safetensors (or model directory)")
    c.add_argument("--ref", required=True, help="reference .safetensors (or model directory)")
    c.add_argument("--rtol", type=float, default=1e-4)
    c.add_argument("--skip", default=None, help="regex: tensor names to leave out")

    f = sub.add_parser("fdcheck", help="self-test: autograd vs. finite differences")
    add_data_args(f)
    f.add_argument("--micro-batch", type=int, default=0)
    f.add_argument("--samples", type=int, default=3, help="entries with a gradient per parameter (+1 without)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--eps", type=float, default=1e-5,
                   help="finite-difference step (1e-6 also passes, with ~10x the rounding noise)")
    f.add_argument("--tol", type=float, default=1e-5)
    f.add_argument("--floor", type=float, default=1e-3, help="denominator floor of the relative error")
    f.add_argument("--verbose", action="store_true")

    args = ap.parse_args()
    {"grads": cmd_grads, "train": cmd_train, "compare": cmd_compare, "fdcheck": cmd_fdcheck}[args.cmd](args)


if __name__ == "__main__":
    main()

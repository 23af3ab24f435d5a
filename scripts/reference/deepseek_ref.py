#!/usr/bin/python3
"""Reference forward pass of DeepSeek-V2 / V2-Lite / V3 / R1 in float64 (PyTorch), from deepseek-spec.md §2.

Usage:
  /usr/bin/python3 scripts/reference/deepseek_ref.py --model DIR --tokens 5,17,42 [--attention naive|absorbed]
prints {"tokens":[...],"logits":[[...vocab floats...], ...one row per position]} to stdout.

As a module:
  import deepseek_ref
  logits = deepseek_ref.forward(model_dir, [5, 17, 42])      # torch.float64 tensor [T, vocab]
  model = deepseek_ref.Model(model_dir); model.forward(tokens, attention="absorbed", trace={})

Every stored weight is decoded exactly (BF16, F16, F32; F8_E4M3 multiplied by its 128x128 block weight_scale_inv)
and converted to float64; all arithmetic is float64. whale q8 / q4 checkpoints (`whale quantize`, quantization_config
quant_method "whale") are read by dequantizing each block exactly, w = f16 scale * code (quantize_ref.py), so the
reference runs on the very weights a quantized whale model holds. This is the exact math on the stored weights, not a copy of the
official code's BF16 rounding. Positions are 0..T-1 in one causal pass. The MTP layer (index num_hidden_layers) is
never read.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tensor_io as tio  # noqa: E402

DT = torch.float64


# ----------------------------------------------------------------------------------------------------------------
# RoPE / YaRN (spec §2.5, §2.6)
# ----------------------------------------------------------------------------------------------------------------

def yarn_mscale(scale, m):
    """mscale(s, m) = 0.1 * m * ln(s) + 1 if s > 1 else 1."""
    if scale <= 1.0:
        return 1.0
    return 0.1 * m * math.log(scale) + 1.0


def rope_inv_freq(d, theta, rope_scaling):
    """Inverse frequencies omega_i, i = 0..d/2-1, float64; YaRN-adjusted when rope_scaling is of type yarn."""
    i = torch.arange(0, d // 2, dtype=DT)
    base = 1.0 / (float(theta) ** (2.0 * i / d))
    if not rope_scaling:
        return base
    kind = rope_scaling.get("type", rope_scaling.get("rope_type"))
    if kind != "yarn":
        raise ValueError(f"unsupported rope_scaling type {kind!r}")
    s = float(rope_scaling["factor"])
    L0 = float(rope_scaling["original_max_position_embeddings"])
    beta_fast = float(rope_scaling.get("beta_fast", 32))
    beta_slow = float(rope_scaling.get("beta_slow", 1))

    def corr(r):
        return d * math.log(L0 / (2 * math.pi * r)) / (2 * math.log(theta))

    low = max(math.floor(corr(beta_fast)), 0)
    high = min(math.ceil(corr(beta_slow)), d - 1)
    if low == high:
        high += 0.001
    ramp = torch.clamp((i - low) / (high - low), 0.0, 1.0)
    return base * ((1.0 - ramp) + ramp / s)


def softmax_scale(qk_head_dim, rope_scaling):
    """sigma = qk_head_dim^-1/2 * mscale(factor, mscale_all_dim)^2 (no factor without YaRN / mscale_all_dim)."""
    sigma = qk_head_dim ** -0.5
    if rope_scaling:
        m = rope_scaling.get("mscale_all_dim", 0) or 0
        if m:
            sigma *= yarn_mscale(float(rope_scaling["factor"]), float(m)) ** 2
    return sigma


def apply_rope(x, cos, sin):
    """Adjacent-pair (interleaved) RoPE on the last dim of x. cos/sin broadcast to x[..., ::2].
    y[2i] = x[2i] cos - x[2i+1] sin ; y[2i+1] = x[2i] sin + x[2i+1] cos."""
    x0 = x[..., 0::2]
    x1 = x[..., 1::2]
    y = torch.empty_like(x)
    y[..., 0::2] = x0 * cos - x1 * sin
    y[..., 1::2] = x0 * sin + x1 * cos
    return y


# ----------------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------------

class Config:
    def __init__(self, c):
        self.raw = c
        self.model_type = c.get("model_type")
        self.D = c["hidden_size"]
        self.n_layers = c["num_hidden_layers"]
        self.H = c["num_attention_heads"]
        self.q_lora_rank = c.get("q_lora_rank") or 0  # null / 0 -> plain q_proj
        self.kv_lora_rank = c["kv_lora_rank"]
        self.dn = c["qk_nope_head_dim"]
        self.dr = c["qk_rope_head_dim"]
        self.dv = c["v_head_dim"]
        self.dqk = self.dn + self.dr
        self.vocab = c["vocab_size"]
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.theta = c.get("rope_theta", 10000)
        self.rope_scaling = c.get("rope_scaling")
        self.E = c.get("n_routed_experts") or 0
        self.n_shared = c.get("n_shared_experts") or 0
        self.K = c.get("num_experts_per_tok")
        self.n_group = c.get("n_group") or 1
        self.topk_group = c.get("topk_group") or 1
        self.rsf = c.get("routed_scaling_factor", 1.0)
        self.scoring = c.get("scoring_func", "softmax")
        self.topk_method = c.get("topk_method", "greedy")
        self.norm_topk_prob = bool(c.get("norm_topk_prob", False))
        self.first_dense = c.get("first_k_dense_replace", 0)
        self.moe_freq = c.get("moe_layer_freq", 1)
        if c.get("hidden_act", "silu") != "silu":
            raise ValueError(f"unsupported hidden_act {c.get('hidden_act')}")
        if c.get("tie_word_embeddings"):
            raise ValueError("tie_word_embeddings is not supported")

    def is_moe(self, layer):
        return self.E > 0 and layer >= self.first_dense and layer % self.moe_freq == 0


class Model:
    def __init__(self, model_dir, cache=False, dtype=DT, bf16_activations=False):
        """dtype other than float64 only for experiments (e.g. estimating an f32 engine's rounding error).
        bf16_activations: whale's --activations bf16 (model.h): a BF16 projection, of any number of tokens, whose
        input width is a multiple of 32 (the dot instruction's step) multiplies the activations rounded to bf16
        (from f32, nearest even), as DeepSeek's model.py computes; the
        router and the attention's kv_b_proj (not computed by linear) stay exact."""
        self.dt = dtype
        self.bf16_activations = bf16_activations
        self.pos_offset = 0  # position of the first token (0 for the reference)
        self.ckpt = tio.Checkpoint(model_dir)
        self.cfg = Config(self.ckpt.config)
        self.cache = {} if cache else None
        c = self.cfg
        self.inv_freq = rope_inv_freq(c.dr, c.theta, c.rope_scaling).to(dtype)
        self.sigma = softmax_scale(c.dqk, c.rope_scaling)

    # weights ---------------------------------------------------------------------------------------------------
    def w(self, name):
        if self.cache is not None and name in self.cache:
            return self.cache[name]
        t = torch.from_numpy(np.ascontiguousarray(self.ckpt.float64(name))).to(self.dt)
        if self.cache is not None:
            self.cache[name] = t
        return t

    # building blocks -------------------------------------------------------------------------------------------
    def rmsnorm(self, x, name):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + self.cfg.eps) * self.w(name)

    def linear(self, x, name):
        if (self.bf16_activations and x.shape[-1] % 32 == 0
                and not name.endswith("mlp.gate.weight")
                and self.ckpt.dtype(name) == "BF16"):
            x = x.to(torch.float32).to(torch.bfloat16).to(self.dt)
        return x @ self.w(name).T

    def mlp(self, x, prefix):
        g = self.linear(x, prefix + "gate_proj.weight")
        u = self.linear(x, prefix + "up_proj.weight")
        return self.linear(torch.nn.functional.silu(g) * u, prefix + "down_proj.weight")

    def attention(self, x, layer, attention="naive"):
        c = self.cfg
        p = f"model.layers.{layer}.self_attn."
        T = x.shape[0]
        if c.q_lora_rank:
            cq = self.rmsnorm(self.linear(x, p + "q_a_proj.weight"), p + "q_a_layernorm.weight")
            q = self.linear(cq, p + "q_b_proj.weight")
        else:
            q = self.linear(x, p + "q_proj.weight")
        q = q.view(T, c.H, c.dqk)
        q_nope, q_rope = q[..., : c.dn], q[..., c.dn:]
        pos = torch.arange(T, dtype=self.dt) + self.pos_offset
        ang = pos[:, None] * self.inv_freq[None, :]  # [T, dr/2]
        cos, sin = torch.cos(ang), torch.sin(ang)
        q_rope = apply_rope(q_rope, cos[:, None, :], sin[:, None, :])

        a = self.linear(x, p + "kv_a_proj_with_mqa.weight")  # [T, r_kv + dr]
        ckv = self.rmsnorm(a[:, : c.kv_lora_rank], p + "kv_a_layernorm.weight")
        k_rope = apply_rope(a[:, c.kv_lora_rank:], cos, sin)  # [T, dr], shared by all heads
        wkvb = self.w(p + "kv_b_proj.weight")  # [H*(dn+dv), r_kv]
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # True above the diagonal (t > p)

        if attention == "naive":
            kv = (ckv @ wkvb.T).view(T, c.H, c.dn + c.dv)
            k_nope, v = kv[..., : c.dn], kv[..., c.dn:]
            s = torch.einsum("phd,thd->hpt", q_nope, k_nope) + torch.einsum("phd,td->hpt", q_rope, k_rope)
            s = s * self.sigma
            s = s.masked_fill(mask, float("-inf"))
            alpha = torch.softmax(s, dim=-1)
            o = torch.einsum("hpt,thd->phd", alpha, v)
        elif attention == "absorbed":
            w3 = wkvb.view(c.H, c.dn + c.dv, c.kv_lora_rank)
            w_uk, w_uv = w3[:, : c.dn, :], w3[:, c.dn:, :]
            q_lat = torch.einsum("phd,hdc->phc", q_nope, w_uk)
            s = torch.einsum("phc,tc->hpt", q_lat, ckv) + torch.einsum("phd,td->hpt", q_rope, k_rope)
            s = s * self.sigma
            s = s.masked_fill(mask, float("-inf"))
            alpha = torch.softmax(s, dim=-1)
            o_lat = torch.einsum("hpt,tc->phc", alpha, ckv)
            o = torch.einsum("phc,hvc->phv", o_lat, w_uv)
        else:
            raise ValueError(f"attention must be naive or absorbed, not {attention!r}")
        return self.linear(o.reshape(T, c.H * c.dv), p + "o_proj.weight")

    def route(self, x, layer, use_bias=True, trace=None):
        """Returns (expert indices [T, K] int64, weights [T, K] float64) per spec §2.8."""
        c = self.cfg
        p = f"model.layers.{layer}.mlp.gate."
        logits = self.linear(x, p + "weight")  # [T, E]
        if c.scoring == "softmax":
            s = torch.softmax(logits, dim=-1)
        elif c.scoring == "sigmoid":
            s = torch.sigmoid(logits)
        else:
            raise ValueError(f"unsupported scoring_func {c.scoring!r}")
        T, E = s.shape
        G = c.n_group
        if c.topk_method == "noaux_tc":
            bias = self.w(p + "e_score_correction_bias") if use_bias else torch.zeros(E, dtype=self.dt)
            sel = s + bias  # used only for the choice
            if G > 1:
                gs = sel.view(T, G, E // G).topk(2, dim=-1).values.sum(-1)  # [T, G]
                gsel = gs.topk(c.topk_group, dim=-1).indices
                gmask = torch.zeros(T, G, dtype=torch.bool).scatter_(1, gsel, True)
                emask = gmask[:, :, None].expand(T, G, E // G).reshape(T, E)
                sel = sel.masked_fill(~emask, float("-inf"))
            idx = sel.topk(c.K, dim=-1).indices
            self._trace_route(trace, layer, sel, gs if G > 1 else None)
            wts = s.gather(1, idx)
            if c.norm_topk_prob:
                wts = wts / wts.sum(-1, keepdim=True)
            wts = wts * c.rsf
        elif c.topk_method in ("greedy", "group_limited_greedy"):
            sel = s
            if c.topk_method == "group_limited_greedy" and G > 1:
                gs = s.view(T, G, E // G).max(dim=-1).values
                gsel = gs.topk(c.topk_group, dim=-1).indices
                gmask = torch.zeros(T, G, dtype=torch.bool).scatter_(1, gsel, True)
                emask = gmask[:, :, None].expand(T, G, E // G).reshape(T, E)
                sel = s.masked_fill(~emask, float("-inf"))
            idx = sel.topk(c.K, dim=-1).indices
            self._trace_route(trace, layer, sel, gs if (c.topk_method == "group_limited_greedy" and G > 1) else None)
            wts = s.gather(1, idx)
            if c.K > 1 and c.norm_topk_prob:
                wts = wts / wts.sum(-1, keepdim=True)
            else:
                wts = wts * c.rsf
        else:
            raise ValueError(f"unsupported topk_method {c.topk_method!r}")
        return idx, wts

    @staticmethod
    def _trace_route(trace, layer, sel, group_scores):
        if trace is not None:
            trace.setdefault("selection_scores", {})[layer] = sel.clone()
            if group_scores is not None:
                trace.setdefault("group_scores", {})[layer] = group_scores.clone()

    def moe(self, x, layer, trace=None, use_bias=True):
        c = self.cfg
        p = f"model.layers.{layer}.mlp."
        idx, wts = self.route(x, layer, use_bias, trace)
        if trace is not None:
            trace.setdefault("experts", {})[layer] = idx.clone()
            trace.setdefault("weights", {})[layer] = wts.clone()
        y = torch.zeros_like(x)
        for e in torch.unique(idx).tolist():
            rows, slot = torch.nonzero(idx == e, as_tuple=True)
            out = self.mlp(x[rows], f"{p}experts.{e}.")
            y.index_add_(0, rows, out * wts[rows, slot][:, None])
        if c.n_shared:
            y = y + self.mlp(x, p + "shared_experts.")
        return y

    # top level -------------------------------------------------------------------------------------------------
    def forward(self, tokens, attention="naive", trace=None, use_bias=True):
        """tokens: list of ints. Returns float64 logits [T, vocab]."""
        c = self.cfg
        tokens = [int(t) for t in tokens]
        if not tokens:
            raise ValueError("empty token list")
        for t in tokens:
            if not 0 <= t < c.vocab:
                raise ValueError(f"token {t} outside vocab [0, {c.vocab})")
        emb = self.w("model.embed_tokens.weight")
        h = emb[torch.tensor(tokens, dtype=torch.long)].clone()
        del emb
        for L in range(c.n_layers):
            p = f"model.layers.{L}."
            h = h + self.attention(self.rmsnorm(h, p + "input_layernorm.weight"), L, attention)
            xn = self.rmsnorm(h, p + "post_attention_layernorm.weight")
            if c.is_moe(L):
                h = h + self.moe(xn, L, trace, use_bias)
            else:
                h = h + self.mlp(xn, p + "mlp.")
        hn = self.rmsnorm(h, "model.norm.weight")
        if trace is not None:
            trace["hidden"] = hn
        return self.linear(hn, "lm_head.weight")


def forward(model_dir, tokens, attention="naive"):
    """float64 logits [T, vocab] of tokens at positions 0..T-1."""
    return Model(model_dir).forward(tokens, attention=attention)


def logits_json(tokens, logits):
    return json.dumps({"tokens": [int(t) for t in tokens], "logits": logits.tolist()}, separators=(",", ":"))


def parse_tokens(s):
    try:
        toks = [int(t) for t in s.split(",") if t.strip() != ""]
    except ValueError:
        raise SystemExit(f"--tokens: expected comma-separated integers, got {s!r}")
    if not toks:
        raise SystemExit("--tokens: empty")
    return toks


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="Hugging Face model directory")
    ap.add_argument("--tokens", required=True, help="comma-separated token ids, e.g. 5,17,42")
    ap.add_argument("--attention", default="naive", choices=["naive", "absorbed"],
                    help="MLA form (same math; naive is the reference)")
    args = ap.parse_args()
    tokens = parse_tokens(args.tokens)
    with torch.no_grad():
        logits = forward(args.model, tokens, attention=args.attention)
    sys.stdout.write(logits_json(tokens, logits) + "\n")


if __name__ == "__main__":
    main()

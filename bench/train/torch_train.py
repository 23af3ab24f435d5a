#!/usr/bin/python3
"""PyTorch CPU training peer of `whale train`: the same DeepSeek architecture, written as a PyTorch user would.

Usage:
  /usr/bin/python3 bench/train/torch_train.py --config CONFIG.json --batch-size B --seq-len T --steps S
      --warmup-steps W --threads N [--mtp-weight L] [--bias-update-rate G] [--seed 0] [--fixed-batch] [--json]

A float32 nn.Module model (embedding; pre-norm decoder layers with MLA in the expanded form, interleaved-pair RoPE,
causal attention, dense SwiGLU or sigmoid/noaux_tc MoE with shared experts; final norm; untied lm_head;
optional MTP module), trained with torch.optim.AdamW (lr 1e-3, betas (0.9, 0.95), weight decay 0.1 on matrices)
and clip_grad_norm_(1.0) on seeded random token ids (a new B x (T+1) batch per step, or one batch reused with
--fixed-batch). The loss is docs/training.md's L = L_main + L * L_mtp (no balance loss); after each step the
routing biases get the auxiliary-loss-free update of docs/training.md (rate --bias-update-rate, default 0.001 as in
whale; 0 = off). W untimed steps, then S timed steps (zero_grad, forward, loss, backward, clip, step, bias update);
prints {"engine": "pytorch", ..., "step_seconds": [...], "median_tokens_per_second": ..., "losses": [...]}
(one JSON line with --json, indented otherwise). Written from docs/training.md and ../shared/docs/deepseek-spec.md.

Threads and BLAS: N intra-op threads (torch.set_num_threads), 1 inter-op thread, and OMP_NUM_THREADS /
OPENBLAS_NUM_THREADS set to N before torch is imported. Debian's torch 1.13 multiplies f32 matrices with the system
OpenBLAS (0.3.21, pthreads), which torch.set_num_threads does not size, and two tunings are applied by default
(--openblas-coretype default / --omp-wait-policy default turn them off):
  * OPENBLAS_CORETYPE=SkylakeX on AVX-512 CPUs (Haswell on AVX2): OpenBLAS 0.3.21 does not recognize recent Xeons
    (e.g. family 6 model 207) and falls back to its SSE3 "Prescott" kernels, ~5x slower sgemm;
  * OMP_WAIT_POLICY=PASSIVE: otherwise libgomp's spin-waiting workers compete with OpenBLAS's threads for the cores.
The JSON reports both ("openblas_core", "omp_wait_policy"). torch < 2.0 has no scaled_dot_product_attention; the
eager form (matmul, causal mask, softmax, matmul) is used there ("attention": "eager").
"""

import argparse
import json
import math
import os
import statistics
import sys
import time


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def best_openblas_coretype():
    """OpenBLAS kernel set for this CPU: OpenBLAS 0.3.21 (Debian 12) does not recognize recent Xeons (e.g. family 6
    model 207) and falls back to its SSE3 'Prescott' kernels, ~5x slower sgemm than its AVX-512 ones."""
    flags = cpu_flags()
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return "default"


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="HF-style config.json (DeepSeek V2/V3 fields)")
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--seq-len", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True, help="timed steps")
    ap.add_argument("--warmup-steps", type=int, default=2, help="untimed steps before the timed ones")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--mtp-weight", type=float, default=0.0)
    ap.add_argument("--bias-update-rate", type=float, default=0.001)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fixed-batch", action="store_true", help="reuse one batch every step (overfitting sanity check)")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON line")
    ap.add_argument("--openblas-coretype", default="auto",
                    help="OPENBLAS_CORETYPE for torch's OpenBLAS: auto (SkylakeX with AVX-512, Haswell with AVX2; "
                         "an OPENBLAS_CORETYPE already in the environment wins), default (OpenBLAS's own detection), "
                         "or a name such as SkylakeX")
    ap.add_argument("--omp-wait-policy", default="auto",
                    help="OMP_WAIT_POLICY: auto (PASSIVE; an OMP_WAIT_POLICY already in the environment wins), "
                         "default (leave it unset: libgomp's spinning workers then compete with OpenBLAS's own "
                         "threads, ~3x slower steps at 2 threads on 2 cores), PASSIVE or ACTIVE")
    a = ap.parse_args(argv)
    if a.omp_wait_policy == "auto":
        a.omp_wait_policy = os.environ.get("OMP_WAIT_POLICY") or "PASSIVE"
    if a.openblas_coretype == "auto":
        a.openblas_coretype = os.environ.get("OPENBLAS_CORETYPE") or best_openblas_coretype()
    if a.batch_size < 1 or a.seq_len < 1 or a.steps < 1 or a.warmup_steps < 0 or a.threads < 1:
        ap.error("need --batch-size, --seq-len, --steps, --threads >= 1 and --warmup-steps >= 0")
    return a


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    # Must happen before torch (and with it OpenMP and OpenBLAS) is loaded.
    os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)
    if ARGS.openblas_coretype != "default":
        os.environ["OPENBLAS_CORETYPE"] = ARGS.openblas_coretype
    if ARGS.omp_wait_policy != "default":
        os.environ["OMP_WAIT_POLICY"] = ARGS.omp_wait_policy

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


# ----------------------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------------------

class Config:
    def __init__(self, d):
        self.vocab_size = d["vocab_size"]
        self.hidden_size = d["hidden_size"]
        self.num_hidden_layers = d["num_hidden_layers"]
        self.num_heads = d["num_attention_heads"]
        self.q_lora_rank = d.get("q_lora_rank") or None  # null / 0 = plain q_proj
        self.kv_lora_rank = d["kv_lora_rank"]
        self.qk_nope_head_dim = d["qk_nope_head_dim"]
        self.qk_rope_head_dim = d["qk_rope_head_dim"]
        self.v_head_dim = d["v_head_dim"]
        self.qk_head_dim = self.qk_nope_head_dim + self.qk_rope_head_dim
        self.intermediate_size = d["intermediate_size"]
        self.moe_intermediate_size = d.get("moe_intermediate_size", 0)
        self.n_routed_experts = d.get("n_routed_experts") or 0
        self.n_shared_experts = d.get("n_shared_experts") or 0
        self.num_experts_per_tok = d.get("num_experts_per_tok") or 0
        self.first_k_dense_replace = d.get("first_k_dense_replace", 0)
        self.moe_layer_freq = d.get("moe_layer_freq", 1)
        self.routed_scaling_factor = float(d.get("routed_scaling_factor", 1.0))
        self.norm_topk_prob = bool(d.get("norm_topk_prob", False))
        self.scoring_func = d.get("scoring_func", "softmax")
        self.topk_method = d.get("topk_method", "greedy")
        self.n_group = d.get("n_group") or 1
        self.rope_theta = float(d.get("rope_theta", 10000.0))
        self.rms_norm_eps = float(d.get("rms_norm_eps", 1e-6))
        self.num_nextn_predict_layers = d.get("num_nextn_predict_layers") or 0
        self.tie_word_embeddings = bool(d.get("tie_word_embeddings", False))
        if d.get("rope_scaling"):
            raise SystemExit("rope_scaling (YaRN) is not implemented by this benchmark peer")
        if self.tie_word_embeddings:
            raise SystemExit("tie_word_embeddings = true is not supported")
        if d.get("hidden_act", "silu") != "silu":
            raise SystemExit(f"hidden_act {d.get('hidden_act')!r}: only silu")
        if self.n_routed_experts > 0:
            if self.scoring_func != "sigmoid" or self.topk_method != "noaux_tc" or self.n_group != 1:
                raise SystemExit("MoE routing: only scoring_func sigmoid, topk_method noaux_tc, n_group 1")

    def is_moe(self, layer):
        return (self.n_routed_experts > 0 and layer >= self.first_k_dense_replace
                and layer % self.moe_layer_freq == 0)


# ----------------------------------------------------------------------------------------------------------------
# Modules
# ----------------------------------------------------------------------------------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class RotaryEmbedding(nn.Module):
    """cos / sin of p * theta^(-2i/d) for positions 0..n-1 (no YaRN)."""

    def __init__(self, dim, theta):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, n):
        angles = torch.outer(torch.arange(n, dtype=torch.float32), self.inv_freq)  # [n, dim/2]
        return angles.cos(), angles.sin()


def apply_rope_interleaved(x, cos, sin):
    """RoPE on adjacent pairs (x[2i], x[2i+1]) of the last dim; x [..., n, d], cos/sin [n, d/2]."""
    pairs = x.unflatten(-1, (-1, 2))
    x0, x1 = pairs[..., 0], pairs[..., 1]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


def causal_attention(q, k, v, scale):
    """softmax(scale * q k^T + causal mask) v; q, k [B, H, T, d_qk], v [B, H, T, d_v]."""
    if hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0
        try:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
        except TypeError:  # torch 2.0 has no scale argument: fold it into q
            return F.scaled_dot_product_attention(q * (scale * q.shape[-1] ** 0.5), k, v, is_causal=True)
    # torch 1.x eager attention (what HF's "eager" attention does)
    n = q.shape[-2]
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    mask = torch.ones(n, n, dtype=torch.bool, device=q.device).triu_(1)
    scores = scores.masked_fill(mask, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


class MLAttention(nn.Module):
    """Multi-head latent attention, expanded ("naive") form (deepseek-spec §2.4)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        H = c.num_heads
        if c.q_lora_rank:
            self.q_a_proj = nn.Linear(c.hidden_size, c.q_lora_rank, bias=False)
            self.q_a_layernorm = RMSNorm(c.q_lora_rank, c.rms_norm_eps)
            self.q_b_proj = nn.Linear(c.q_lora_rank, H * c.qk_head_dim, bias=False)
        else:
            self.q_proj = nn.Linear(c.hidden_size, H * c.qk_head_dim, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(c.hidden_size, c.kv_lora_rank + c.qk_rope_head_dim, bias=False)
        self.kv_a_layernorm = RMSNorm(c.kv_lora_rank, c.rms_norm_eps)
        self.kv_b_proj = nn.Linear(c.kv_lora_rank, H * (c.qk_nope_head_dim + c.v_head_dim), bias=False)
        self.o_proj = nn.Linear(H * c.v_head_dim, c.hidden_size, bias=False)
        self.scale = c.qk_head_dim ** -0.5

    def forward(self, x, cos, sin):
        c = self.c
        B, T, _ = x.shape
        H, dn, dr, dv = c.num_heads, c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim
        q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x))) if c.q_lora_rank else self.q_proj(x)
        q = q.view(B, T, H, dn + dr).transpose(1, 2)  # [B, H, T, d_qk]
        q_nope, q_rope = q.split([dn, dr], dim=-1)
        latent, k_rope = self.kv_a_proj_with_mqa(x).split([c.kv_lora_rank, dr], dim=-1)
        kv = self.kv_b_proj(self.kv_a_layernorm(latent)).view(B, T, H, dn + dv).transpose(1, 2)
        k_nope, v = kv.split([dn, dv], dim=-1)
        q_rope = apply_rope_interleaved(q_rope, cos, sin)
        k_rope = apply_rope_interleaved(k_rope.unsqueeze(1), cos, sin)  # [B, 1, T, d_r]: shared by all heads
        q = torch.cat([q_nope, q_rope], dim=-1)
        k = torch.cat([k_nope, k_rope.expand(B, H, T, dr)], dim=-1)
        o = causal_attention(q, k, v, self.scale)  # [B, H, T, d_v]
        return self.o_proj(o.transpose(1, 2).reshape(B, T, H * dv))


class SwiGLU(nn.Module):
    def __init__(self, hidden, inter):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, inter, bias=False)
        self.up_proj = nn.Linear(hidden, inter, bias=False)
        self.down_proj = nn.Linear(inter, hidden, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Router(nn.Module):
    """Sigmoid scores; top-k selection on scores + e_score_correction_bias (noaux_tc, one group); gate weights are
    the selected unbiased scores, normalized (norm_topk_prob) and times routed_scaling_factor."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.weight = nn.Parameter(torch.empty(c.n_routed_experts, c.hidden_size))
        self.register_buffer("e_score_correction_bias", torch.zeros(c.n_routed_experts))

    def forward(self, x):  # x [N, D]
        scores = torch.sigmoid(F.linear(x, self.weight))
        with torch.no_grad():
            idx = torch.topk(scores + self.e_score_correction_bias, self.c.num_experts_per_tok, dim=-1).indices
        w = scores.gather(1, idx)
        if self.c.norm_topk_prob:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
        return idx, w * self.c.routed_scaling_factor


class MoE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.gate = Router(c)
        self.experts = nn.ModuleList(SwiGLU(c.hidden_size, c.moe_intermediate_size) for _ in range(c.n_routed_experts))
        self.shared_experts = (SwiGLU(c.hidden_size, c.moe_intermediate_size * c.n_shared_experts)
                               if c.n_shared_experts else None)
        self.register_buffer("counts", torch.zeros(c.n_routed_experts, dtype=torch.long), persistent=False)

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        idx, w = self.gate(x)  # [N, K] each
        K = idx.shape[1]
        flat = idx.reshape(-1)
        order = torch.argsort(flat)  # (token, slot) pairs grouped by expert
        counts = torch.bincount(flat, minlength=self.c.n_routed_experts)
        self.counts += counts
        tokens = order // K
        weights = w.reshape(-1)[order]
        y = torch.zeros_like(x)
        start = 0
        for e, n in enumerate(counts.tolist()):
            if n == 0:
                continue
            tok = tokens[start:start + n]
            out = self.experts[e](x.index_select(0, tok)) * weights[start:start + n, None]
            y.index_add_(0, tok, out)
            start += n
        if self.shared_experts is not None:
            y = y + self.shared_experts(x)
        return y.view(shape)


class DecoderLayer(nn.Module):
    def __init__(self, c, layer):
        super().__init__()
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = MLAttention(c)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.mlp = MoE(c) if c.is_moe(layer) else SwiGLU(c.hidden_size, c.intermediate_size)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class MTPModule(nn.Module):
    """Layer num_hidden_layers: u = eh_proj [enorm(embed(id_{t+1})); hnorm(h_t)] -> decoder layer -> shared_head.norm.
    The embedding and lm_head are the main model's (passed in)."""

    def __init__(self, c):
        super().__init__()
        self.enorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.hnorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.eh_proj = nn.Linear(2 * c.hidden_size, c.hidden_size, bias=False)
        self.layer = DecoderLayer(c, c.num_hidden_layers)
        self.shared_head_norm = RMSNorm(c.hidden_size, c.rms_norm_eps)

    def forward(self, emb_next, h, cos, sin):
        u = self.eh_proj(torch.cat([self.enorm(emb_next), self.hnorm(h)], dim=-1))
        return self.shared_head_norm(self.layer(u, cos, sin))


class DeepseekForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(c, i) for i in range(c.num_hidden_layers))
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.rope = RotaryEmbedding(c.qk_rope_head_dim, c.rope_theta)
        self.mtp = MTPModule(c) if c.num_nextn_predict_layers == 1 else None
        if c.num_nextn_predict_layers > 1:
            raise SystemExit("num_nextn_predict_layers > 1 is not supported")
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        elif isinstance(m, Router):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, ids, mtp_weight=0.0):
        """ids [B, T+1]: reads ids[:, :T], scored on ids[:, 1:]; returns (total loss, main loss, mtp loss or None)."""
        inp, target = ids[:, :-1], ids[:, 1:]
        T = inp.shape[1]
        cos, sin = self.rope(T)
        h = self.embed_tokens(inp)
        for layer in self.layers:
            h = layer(h, cos, sin)
        h = self.norm(h)
        main = F.cross_entropy(self.lm_head(h).flatten(0, 1), target.flatten())
        if mtp_weight <= 0 or self.mtp is None:
            return main, main, None
        z = self.mtp(self.embed_tokens(ids[:, 1:T]), h[:, :T - 1], cos[:T - 1], sin[:T - 1])
        mtp = F.cross_entropy(self.lm_head(z).flatten(0, 1), ids[:, 2:].flatten())
        return main + mtp_weight * mtp, main, mtp

    def moe_layers(self, with_mtp):
        layers = list(self.layers) + ([self.mtp.layer] if with_mtp and self.mtp is not None else [])
        return [layer.mlp for layer in layers if isinstance(layer.mlp, MoE)]


@torch.no_grad()
def update_routing_biases(moes, rate):
    """docs/training.md "Balancing by the routing bias": b_i -= rate where c_i > mean, += rate where c_i < mean."""
    for moe in moes:
        c = moe.counts.to(torch.float32)
        if rate > 0:
            moe.gate.e_score_correction_bias += rate * torch.sign(c.mean() - c)
        moe.counts.zero_()


# ----------------------------------------------------------------------------------------------------------------
# Benchmark
# ----------------------------------------------------------------------------------------------------------------

def openblas_corename():
    """Kernel set the loaded OpenBLAS uses (None when torch's BLAS is not OpenBLAS)."""
    try:
        import ctypes
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return None


def run(a):
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set (only possible before any parallel work)
    torch.manual_seed(a.seed)
    with open(a.config) as f:
        c = Config(json.load(f))
    if a.mtp_weight > 0 and c.num_nextn_predict_layers != 1:
        raise SystemExit("--mtp-weight > 0 needs num_nextn_predict_layers = 1")
    if a.mtp_weight > 0 and a.seq_len < 2:
        raise SystemExit("the MTP loss needs --seq-len >= 2")
    use_mtp = a.mtp_weight > 0
    model = DeepseekForCausalLM(c)
    if not use_mtp:
        model.mtp = None  # not trained: leave its parameters out of the optimizer, as whale does
    model.train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, foreach=True)
    moes = model.moe_layers(use_mtp)
    gen = torch.Generator().manual_seed(a.seed + 1)
    low = 2 if c.vocab_size > 2 else 0  # ids 0/1 are bos/eos in the test configs (make_token_data.py)

    def batch():
        return torch.randint(low, c.vocab_size, (a.batch_size, a.seq_len + 1), generator=gen)

    fixed = batch() if a.fixed_batch else None
    step_seconds, losses, mtp_losses = [], [], []
    for step in range(a.warmup_steps + a.steps):
        t0 = time.perf_counter()
        ids = fixed if fixed is not None else batch()
        opt.zero_grad(set_to_none=True)
        loss, main, mtp = model(ids, a.mtp_weight)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        update_routing_biases(moes, a.bias_update_rate)
        dt = time.perf_counter() - t0
        losses.append(round(loss.item(), 5))
        if mtp is not None:
            mtp_losses.append(round(mtp.item(), 5))
        if step >= a.warmup_steps:
            step_seconds.append(dt)
    tokens = a.batch_size * a.seq_len
    med = statistics.median(step_seconds)
    out = {
        "engine": "pytorch",
        "torch_version": torch.__version__,
        "threads": a.threads,
        "tokens_per_step": tokens,
        "step_seconds": [round(s, 5) for s in step_seconds],
        "median_tokens_per_second": tokens / med,
        "params": sum(p.numel() for p in model.parameters()),
        "batch_size": a.batch_size,
        "seq_len": a.seq_len,
        "warmup_steps": a.warmup_steps,
        "mtp_weight": a.mtp_weight,
        "openblas_core": openblas_corename(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "attention": "sdpa" if hasattr(F, "scaled_dot_product_attention") else "eager",
        "ln_vocab": math.log(c.vocab_size),
        "losses": losses,
    }
    if mtp_losses:
        out["mtp_losses"] = mtp_losses
    return out


def main():
    out = run(ARGS)
    print(json.dumps(out) if ARGS.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())

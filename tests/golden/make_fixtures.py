#!/usr/bin/env python3
"""Generate the golden test fixtures for the gemma4 C library.

For each fixture this writes tests/golden/<name>/ containing
  config.json (+ generation_config.json)        -- from transformers' save_pretrained
  model.safetensors  or  model-0000k-of-0000n.safetensors + model.safetensors.index.json
  reference.bin                                 -- reference logits + greedy continuation
  reference_bf16act.bin (bf16 fixtures only)    -- the same prompt's logits with every nn.Linear
                                                   input except the MoE router rounded to bf16
                                                   (gemma4's GEMMA4_PRECISION_BF16 prompt numerics;
                                                   experts are not nn.Linear and stay fp32, as in
                                                   gemma4, which runs them one token at a time)

Fixtures (tiny, randomly initialised, see README.md):
  e2b         Gemma4ForCausalLM, E2B-like: PLE, KV sharing, double-wide MLP, dual RoPE; float32
  moe         Gemma4ForCausalLM, 26B-A4B-like: MoE block, k_eq_v, 1 global KV head; bfloat16
  dense31b    Gemma4ForCausalLM, 31B-like: dense, k_eq_v, GQA 8/4 (sliding) 8/2 (full); float16
  multimodal  Gemma4ForConditionalGeneration (text + tiny vision + audio towers), E2B-like text,
              float32, sharded checkpoint with an index
  gemma3      Gemma3ForCausalLM (Gemma 3 text decoder): (1 + w) norms, query_pre_attn_scalar != head_dim,
              linear RoPE (factor 8) on full layers, 5 sliding : 1 full; float32
  gemma3_sliding  Gemma3ForCausalLM, sliding-window heavy: layer pattern from sliding_window_pattern
              (the last layer is sliding), window 4, GQA 4:1, float16; attn_logit_softcapping set,
              which transformers' Gemma3Attention ignores (never passed to the attention)
  gemma3_multimodal  Gemma3ForConditionalGeneration (text + tiny SigLIP tower), gemma3-like text;
              float32, saved as transformers saves it (language_model.model.* names)

Every parameter and persistent buffer is overwritten with seeded random values (nothing is
trivially 0 or 1). The reference is computed with transformers (eager attention, float32,
torch.no_grad) from the model *reloaded from the saved directory* in float32, so for the
bf16 / f16 fixtures it is the float32 forward of the rounded weights.

reference.bin (little-endian):
  char   magic[8] = "G4REF1\\0\\0"
  int32  n_tokens, int32 vocab
  int32  tokens[n_tokens]
  float32 logits[n_tokens * vocab]      full-prefill logits of every position, row-major
  int32  n_gen
  int32  gen[n_gen]                     greedy continuation (32 tokens, no EOS stop)

Self-checks (assertions): reload has no missing/unexpected keys; incremental decode with
the KV cache (prefill 20, then 1 token at a time) matches full prefill to 1e-4 relative;
every greedy token is the argmax of a full forward over prompt+generated.
Seeds: for each fixture the first seed from a fixed base that passes quality criteria is used
(logits not degenerate or saturated, varied greedy continuation, greedy top1-top2 margin >= 0.02,
no MoE router near-ties, small float32-vs-float64 noise); the search is deterministic.

Re-run (regenerates everything in place):  python3 tests/golden/make_fixtures.py [name ...]
Only the Gemma 3 fixtures:  python3 tests/golden/make_fixtures.py --gemma3
Only the bf16-activation references, from the committed fixtures:
  python3 tests/golden/make_fixtures.py --bf16act
"""

import importlib
import importlib.util
import os
import subprocess
import sys


def _ensure_deps():
    missing = [m for m in ("torch", "transformers", "safetensors", "numpy") if importlib.util.find_spec(m) is None]
    if not missing:
        return
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    if "torch" in missing:
        try:
            subprocess.check_call(pip + ["torch", "--index-url", "https://download.pytorch.org/whl/cpu"])
        except subprocess.CalledProcessError:
            subprocess.check_call(pip + ["torch"])
        missing.remove("torch")
    if missing:
        subprocess.check_call(pip + missing)
    importlib.invalidate_caches()


_ensure_deps()

import copy  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import struct  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    Gemma3Config,
    Gemma3ForCausalLM,
    Gemma3ForConditionalGeneration,
    Gemma3TextConfig,
    Gemma4AudioConfig,
    Gemma4Config,
    Gemma4ForCausalLM,
    Gemma4ForConditionalGeneration,
    Gemma4TextConfig,
    Gemma4VisionConfig,
    SiglipVisionConfig,
)

HERE = os.path.dirname(os.path.abspath(__file__))
S, F = "sliding_attention", "full_attention"
ROPE = {
    S: {"rope_type": "default", "rope_theta": 10_000.0},
    F: {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0},
}
N_PROMPT = 48
N_GEN = 32
N_PREFILL_INC = 20
MAGIC = b"G4REF1\0\0"

torch.set_num_threads(1)
transformers.logging.set_verbosity_error()


# --------------------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------------------
def e2b_text_kwargs(layer_types, num_kv_shared_layers):
    return dict(
        vocab_size=512,
        vocab_size_per_layer_input=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=len(layer_types),
        layer_types=list(layer_types),
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        global_head_dim=32,
        hidden_size_per_layer_input=8,
        num_kv_shared_layers=num_kv_shared_layers,
        use_double_wide_mlp=True,
        sliding_window=8,
        final_logit_softcapping=30.0,
        rope_parameters=ROPE,
        attention_k_eq_v=False,
        tie_word_embeddings=True,
    )


def cfg_e2b():
    return Gemma4TextConfig(**e2b_text_kwargs([S, S, S, F, S, S, S, F], 3))


def cfg_moe():
    return Gemma4TextConfig(
        vocab_size=512,
        vocab_size_per_layer_input=512,
        hidden_size=64,
        intermediate_size=48,
        num_hidden_layers=6,
        layer_types=[S, S, F, S, S, F],
        num_attention_heads=4,
        num_key_value_heads=2,
        num_global_key_value_heads=1,
        head_dim=16,
        global_head_dim=32,
        hidden_size_per_layer_input=0,  # 0 disables PLE (checked with `if config.hidden_size_per_layer_input:`)
        num_kv_shared_layers=0,
        use_double_wide_mlp=False,
        enable_moe_block=True,
        num_experts=8,
        top_k_experts=2,
        moe_intermediate_size=32,
        attention_k_eq_v=True,
        sliding_window=8,
        final_logit_softcapping=30.0,
        rope_parameters=ROPE,
        tie_word_embeddings=True,
    )


def cfg_dense31b():
    return Gemma4TextConfig(
        vocab_size=512,
        vocab_size_per_layer_input=512,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=6,
        layer_types=[S, S, S, S, S, F],
        num_attention_heads=8,
        num_key_value_heads=4,
        num_global_key_value_heads=2,
        head_dim=16,
        global_head_dim=32,
        hidden_size_per_layer_input=0,
        num_kv_shared_layers=0,
        use_double_wide_mlp=False,
        enable_moe_block=False,
        attention_k_eq_v=True,
        sliding_window=8,
        final_logit_softcapping=30.0,
        rope_parameters=ROPE,
        tie_word_embeddings=True,
    )


def cfg_multimodal():
    text_kwargs = e2b_text_kwargs([S, S, F, S, S, F], 2)
    text_kwargs["intermediate_size"] = 64  # smaller than e2b to keep the fixture small (128 on shared layers)
    text = Gemma4TextConfig(**text_kwargs)
    vision = Gemma4VisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=8,
        patch_size=4,
        position_embedding_size=16,
        pooling_kernel_size=2,
        use_clipped_linears=True,
    )
    audio = Gemma4AudioConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        subsampling_conv_channels=[8, 4],
        conv_kernel_size=5,
        output_proj_dims=16,
        use_clipped_linears=True,
    )
    return Gemma4Config(text_config=text, vision_config=vision, audio_config=audio)


# Gemma 3 (Gemma3TextConfig). The rope parameters use transformers 5's per-layer-type form; the
# C side also reads the legacy rope_theta / rope_local_base_freq / rope_scaling keys (test_config).
GEMMA3_ROPE = {
    S: {"rope_type": "default", "rope_theta": 10_000.0},
    F: {"rope_type": "linear", "factor": 8.0, "rope_theta": 1_000_000.0},
}


def gemma3_text_kwargs():
    return dict(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=64,
        num_hidden_layers=7,
        layer_types=[S, S, S, S, S, F, S],
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        query_pre_attn_scalar=24,  # != head_dim: the scale must come from this key
        sliding_window=8,
        rope_parameters=copy.deepcopy(GEMMA3_ROPE),
        final_logit_softcapping=None,
        attn_logit_softcapping=None,
        tie_word_embeddings=True,
    )


def cfg_gemma3():
    return Gemma3TextConfig(**gemma3_text_kwargs())


def cfg_gemma3_sliding():
    kw = gemma3_text_kwargs()
    del kw["layer_types"]
    kw.update(num_hidden_layers=7, sliding_window_pattern=3, sliding_window=4, num_attention_heads=4,
              num_key_value_heads=1, attn_logit_softcapping=20.0, query_pre_attn_scalar=16,
              rope_parameters={S: {"rope_type": "default", "rope_theta": 10_000.0},
                               F: {"rope_type": "default", "rope_theta": 1_000_000.0}})
    cfg = Gemma3TextConfig(**kw)
    assert cfg.layer_types == [S, S, F, S, S, F, S], cfg.layer_types
    return cfg


def cfg_gemma3_multimodal():
    kw = gemma3_text_kwargs()
    kw.update(intermediate_size=32)
    vision = SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                image_size=28, patch_size=14)
    return Gemma3Config(text_config=Gemma3TextConfig(**kw).to_dict(), vision_config=vision.to_dict(),
                        mm_tokens_per_image=4, image_token_index=511, boi_token_index=509,
                        eoi_token_index=510)
# Tiny configurations that transformers accepts and an earlier gemma4 read differently (issue 17):
# 2 layers (S F), hidden 32, vocab 128, no PLE. Each fixture isolates one rule.
def tiny_text_kwargs(**over):
    kw = dict(
        vocab_size=128,
        vocab_size_per_layer_input=128,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        layer_types=[S, F],
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        global_head_dim=32,
        hidden_size_per_layer_input=0,
        num_kv_shared_layers=0,
        sliding_window=8,
        final_logit_softcapping=30.0,
        rope_parameters=ROPE,
        attention_k_eq_v=False,
        tie_word_embeddings=True,
    )
    kw.update(over)
    return kw


def cfg_tie_mm_untied():
    # top-level tie_word_embeddings decides for Gemma4ForConditionalGeneration: untied here,
    # although text_config says tied; the checkpoint holds its own lm_head.weight
    text = Gemma4TextConfig(**tiny_text_kwargs(tie_word_embeddings=True))
    return Gemma4Config(text_config=text, vision_config=None, audio_config=None, tie_word_embeddings=False)


def cfg_tie_mm_tied():
    # the reverse: tied (no lm_head.weight saved) although text_config says untied
    text = Gemma4TextConfig(**tiny_text_kwargs(tie_word_embeddings=False))
    return Gemma4Config(text_config=text, vision_config=None, audio_config=None, tie_word_embeddings=True)


def cfg_head_dim_eq():
    # head_dim == global_head_dim: config.json gets "per_layer_config": {} and no global_head_dim
    return Gemma4TextConfig(**tiny_text_kwargs(global_head_dim=16))


def cfg_rope_partial():
    # full layers: head dim 20, partial_rotary_factor 0.7 -> int(0.7 * 20 // 2) = 7 pairs in double
    # precision (6 when the factor is a float32)
    rope = {S: ROPE[S], F: {"rope_type": "proportional", "partial_rotary_factor": 0.7, "rope_theta": 1_000_000.0}}
    return Gemma4TextConfig(**tiny_text_kwargs(global_head_dim=20, rope_parameters=rope))


def cfg_rope_factor():
    # proportional factor 2 (inverse frequencies halved); a factor on default RoPE, which
    # transformers ignores (it warns "Unrecognized keys")
    rope = {S: {"rope_type": "default", "rope_theta": 10_000.0, "factor": 4.0},
            F: {"rope_type": "proportional", "partial_rotary_factor": 0.5, "rope_theta": 10_000.0, "factor": 2.0}}
    return Gemma4TextConfig(**tiny_text_kwargs(rope_parameters=rope))


# --------------------------------------------------------------------------------------
# random init of every parameter / persistent buffer
# --------------------------------------------------------------------------------------
# Init scales. With tied embeddings, a residual stream dominated by the token embedding makes the
# LM head favour the current token and greedy decoding degenerates into repeating one token. So the
# embeddings are kept smallish and the norms closing each residual branch get a gain of ~2; the final
# norm gets ~2 so the logits have a useful spread (std ~3, far from the +-30 softcap).
EMB_STD = 0.2
POST_NORM_GAIN = 2.0
FINAL_NORM_GAIN = 2.0
RESIDUAL_POST_NORMS = ("post_attention_layernorm", "post_feedforward_layernorm", "post_per_layer_input_norm")


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    seen = set()
    counts = {}

    def U(t, lo, hi):
        return torch.rand(t.shape, generator=g, dtype=torch.float64) * (hi - lo) + lo

    def N(t, std):
        return torch.randn(t.shape, generator=g, dtype=torch.float64) * std

    # state_dict(keep_vars=True) = parameters + persistent buffers (tied tensors appear twice)
    for name, t in model.state_dict(keep_vars=True).items():
        if id(t) in seen:
            continue
        seen.add(id(t))
        leaf = name.split(".")[-1]
        if leaf == "layer_scalar":
            v, kind = U(t, 0.5, 1.5), "layer_scalar"
        elif name.endswith("router.scale") or leaf == "per_expert_scale":
            v, kind = U(t, 0.5, 1.5), "router_scale"
        elif name.endswith("router.proj.weight"):
            # large router logits: well separated top-k choices (no near-ties)
            v, kind = N(t, 16.0 / t.shape[-1] ** 0.5), "router_proj"
        elif leaf in ("input_min", "output_min"):
            v, kind = -U(t, 6.0, 10.0), "clip_bound"
        elif leaf in ("input_max", "output_max"):
            v, kind = U(t, 6.0, 10.0), "clip_bound"
        elif "embed_tokens" in name:
            v, kind = N(t, EMB_STD), "embedding"
        elif leaf == "position_embedding_table":
            v, kind = N(t, 0.5), "embedding"
        elif t.dim() == 1 and leaf == "weight" and name.split(".")[-2] in RESIDUAL_POST_NORMS:
            v, kind = POST_NORM_GAIN * (1.0 + U(t, -0.3, 0.3)), "residual_post_norm"
        elif name.endswith("model.norm.weight") or name.endswith("language_model.norm.weight"):
            v, kind = FINAL_NORM_GAIN * (1.0 + U(t, -0.3, 0.3)), "final_norm"
        elif t.dim() == 1 and ("norm" in name or "scale" in leaf):
            v, kind = 1.0 + U(t, -0.3, 0.3), "norm"
        elif t.dim() <= 1:
            v, kind = N(t, 0.1), "bias/other"
        else:
            fan_in = t.shape[-1] if t.dim() <= 3 and "conv" not in name else int(np.prod(t.shape[1:]))
            v, kind = N(t, 1.0 / fan_in**0.5), "linear"
        counts[kind] = counts.get(kind, 0) + 1
        with torch.no_grad():
            t.copy_(v.to(t.dtype))
    return counts


def randomize_gemma3(model, seed):
    """randomize(), then stored norm weights w = gain - 1: Gemma3RMSNorm scales by (1 + w), so the
    effective gains equal the Gemma 4 fixtures' (and no w is trivially 0)."""
    counts = randomize(model, seed)
    with torch.no_grad():
        for m in model.modules():
            if type(m).__name__ == "Gemma3RMSNorm":
                m.weight.sub_(1.0)
    return counts


# --------------------------------------------------------------------------------------
# reference computation
# --------------------------------------------------------------------------------------
def check_incremental(model, ids, full_logits):
    """prefill N_PREFILL_INC tokens with a cache, then decode the rest one token at a time."""
    out = model(input_ids=ids[:, :N_PREFILL_INC], use_cache=True)
    pieces = [out.logits]
    pkv = out.past_key_values
    for i in range(N_PREFILL_INC, ids.shape[1]):
        out = model(input_ids=ids[:, i : i + 1], past_key_values=pkv, use_cache=True)
        pkv = out.past_key_values
        pieces.append(out.logits)
    inc = torch.cat(pieces, dim=1)
    diff = (inc - full_logits).abs().max().item()
    scale = full_logits.abs().max().item()
    return diff / scale  # asserted <= 1e-4 for the accepted seed in build_fixture


class _TrueFloat64:
    """Context manager: make a float64 copy of a model compute entirely in float64.

    transformers upcasts/downcasts to float32 in a few places (RMSNorm `.float()`, attention and router
    softmax dtype=float32, RoPE cos/sin). Patched here only to *measure* the float32 rounding noise of
    the reference (informational + seed acceptance); the stored reference is the plain float32 run.
    """

    def __enter__(self):
        import transformers.models.gemma4.modeling_gemma4 as M

        self.M = M
        self.gemma3 = _TrueFloat64Gemma3().__enter__()
        self.saved = (M.Gemma4RMSNorm.forward, M.eager_attention_forward, M.Gemma4TextRouter.forward,
                      M.Gemma4TextRotaryEmbedding.forward)

        def rms_forward(mod, x):
            y = mod._norm(x)
            return y * mod.weight if mod.with_scale else y

        def eager(module, query, key, value, attention_mask, dropout=0.0, scaling=None, softcap=None, **kw):
            k = M.repeat_kv(key, module.num_key_value_groups)
            v = M.repeat_kv(value, module.num_key_value_groups)
            w = torch.matmul(query, k.transpose(2, 3)) * scaling
            if attention_mask is not None:
                w = w + attention_mask
            w = torch.softmax(w, dim=-1)
            return torch.matmul(w, v).transpose(1, 2).contiguous(), w

        def router(mod, h):
            h = mod.norm(h) * mod.scale * mod.scalar_root_size
            probs = torch.softmax(mod.proj(h), dim=-1)
            w, idx = torch.topk(probs, k=mod.config.top_k_experts, dim=-1)
            w = w / w.sum(dim=-1, keepdim=True)
            return probs, w * mod.per_expert_scale[idx], idx

        def rope(mod, x, position_ids, layer_type):
            inv_freq = getattr(mod, f"{layer_type}_inv_freq").to(torch.float64)
            freqs = position_ids[..., None].to(torch.float64) * inv_freq
            emb = torch.cat((freqs, freqs), dim=-1)
            scaling = getattr(mod, f"{layer_type}_attention_scaling")
            return (emb.cos() * scaling).to(x.dtype), (emb.sin() * scaling).to(x.dtype)

        M.Gemma4RMSNorm.forward = rms_forward
        M.eager_attention_forward = eager
        M.Gemma4TextRouter.forward = router
        M.Gemma4TextRotaryEmbedding.forward = rope
        return self

    def __exit__(self, *exc):
        M = self.M
        (M.Gemma4RMSNorm.forward, M.eager_attention_forward, M.Gemma4TextRouter.forward,
         M.Gemma4TextRotaryEmbedding.forward) = self.saved
        self.gemma3.__exit__(*exc)
        return False


class _TrueFloat64Gemma3:
    """_TrueFloat64's patches for transformers.models.gemma3 (entered by _TrueFloat64)."""

    def __enter__(self):
        import transformers.models.gemma3.modeling_gemma3 as M

        self.M = M
        self.saved = (M.Gemma3RMSNorm.forward, M.eager_attention_forward, M.Gemma3RotaryEmbedding.forward)

        def rms_forward(mod, x):
            return mod._norm(x) * (1.0 + mod.weight)

        def eager(module, query, key, value, attention_mask, dropout=0.0, scaling=None, softcap=None, **kw):
            assert softcap is None  # Gemma3Attention passes none (attn_logit_softcapping is unused)
            k = M.repeat_kv(key, module.num_key_value_groups)
            v = M.repeat_kv(value, module.num_key_value_groups)
            w = torch.matmul(query, k.transpose(2, 3)) * scaling
            if attention_mask is not None:
                w = w + attention_mask
            w = torch.softmax(w, dim=-1)
            return torch.matmul(w, v).transpose(1, 2).contiguous(), w

        def rope(mod, x, position_ids, layer_type):
            inv_freq = getattr(mod, f"{layer_type}_inv_freq").to(torch.float64)
            freqs = position_ids[..., None].to(torch.float64) * inv_freq
            emb = torch.cat((freqs, freqs), dim=-1)
            scaling = getattr(mod, f"{layer_type}_attention_scaling")
            return (emb.cos() * scaling).to(x.dtype), (emb.sin() * scaling).to(x.dtype)

        M.Gemma3RMSNorm.forward = rms_forward
        M.eager_attention_forward = eager
        M.Gemma3RotaryEmbedding.forward = rope
        return self

    def __exit__(self, *exc):
        M = self.M
        (M.Gemma3RMSNorm.forward, M.eager_attention_forward, M.Gemma3RotaryEmbedding.forward) = self.saved
        return False


@torch.no_grad()
def float64_logits(model, ids):
    m64 = copy.deepcopy(model).to(torch.float64)
    with _TrueFloat64():
        out = m64(input_ids=ids).logits[0]
    del m64
    return out


def router_gaps(model, ids):
    """smallest gap, in router-logit space, between the k-th and (k+1)-th expert (detects near-ties)."""
    gaps = []
    hooks = []

    def hook(mod, inp, out):
        probs = out[0].float()
        k = mod.config.top_k_experts
        top = torch.topk(probs, k + 1, dim=-1).values
        gaps.append((top[:, k - 1].log() - top[:, k].log()).min().item())

    for m in model.modules():
        if type(m).__name__ == "Gemma4TextRouter":
            hooks.append(m.register_forward_hook(hook))
    model(input_ids=ids)
    for h in hooks:
        h.remove()
    return min(gaps) if gaps else None


def write_reference(path, tokens, logits, gen):
    tokens = np.asarray(tokens, dtype="<i4")
    logits = np.ascontiguousarray(logits, dtype="<f4")
    gen = np.asarray(gen, dtype="<i4")
    n, v = logits.shape
    assert n == len(tokens)
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<ii", n, v))
        f.write(tokens.tobytes())
        f.write(logits.tobytes())
        f.write(struct.pack("<i", len(gen)))
        f.write(gen.tobytes())


def write_bf16act_reference(name, outdir=None):
    """reference_bf16act.bin of a bf16 fixture: the prompt of reference.bin through the reloaded
    float32 model with each nn.Linear input (router excluded) rounded to bf16; n_gen = 0."""
    outdir = outdir or os.path.join(HERE, name)
    with open(os.path.join(outdir, "reference.bin"), "rb") as f:
        blob = f.read()
    n, _ = struct.unpack_from("<ii", blob, 8)
    tokens = np.frombuffer(blob, dtype="<i4", count=n, offset=16).astype(np.int64)
    model = Gemma4ForCausalLM.from_pretrained(outdir, dtype=torch.float32, attn_implementation="eager").eval()
    hooks = [mod.register_forward_pre_hook(lambda _m, inp: (inp[0].to(torch.bfloat16).to(torch.float32),))
             for mname, mod in model.named_modules()
             if isinstance(mod, torch.nn.Linear) and ".router." not in mname]
    with torch.no_grad():
        logits = model(torch.tensor(tokens[None])).logits[0].float().numpy()
    for h in hooks:
        h.remove()
    with torch.no_grad():
        plain = model(torch.tensor(tokens[None])).logits[0].float().numpy()
    rel = np.abs(logits - plain).max(1) / np.abs(plain).max(1)
    print(f"{name}: bf16-activation logits vs float32: median position rel {np.median(rel):.2e}, "
          f"worst {rel.max():.2e}, argmax equal {(logits.argmax(1) == plain.argmax(1)).sum()}/{n}, "
          f"{len(hooks)} Linear inputs rounded")
    write_reference(os.path.join(outdir, "reference_bf16act.bin"), tokens.tolist(), logits, [])


GENERATED_FILES = ("config.json", "generation_config.json", "model.safetensors.index.json", "reference.bin",
                   "reference_bf16act.bin")


def clean_dir(d):
    """remove only what this script writes (other files, e.g. a tokenizer.json, are left alone)."""
    if os.path.isdir(d):
        for fn in os.listdir(d):
            if fn in GENERATED_FILES or (fn.startswith("model") and fn.endswith(".safetensors")):
                os.remove(os.path.join(d, fn))
    os.makedirs(d, exist_ok=True)


# Acceptance criteria for a seed (so that a correct C port reproduces the reference robustly):
MIN_GEN_MARGIN = 0.02  # top1 - top2 logit gap at every greedy step
MIN_ROUTER_GAP = 2e-3  # log-prob gap between the k-th and (k+1)-th expert, every token and MoE layer
MIN_DISTINCT_GEN = 12  # greedy continuation must not be (nearly) a single repeated token ...
MAX_RUN_GEN = 6  # ... nor contain a long run of one token
MAX_F32_NOISE = 2e-4  # max |float32 reference - float64 forward| over all logits (logit std is ~3)
MAX_INC_REL = 2e-5  # incremental-vs-full relative difference (the hard assertion is 1e-4)
MAX_SEED_TRIES = 200


def make_candidate(name, cfg_fn, model_cls, save_dtype, seed, outdir, max_shard_size):
    """build + randomize + save + reload (float32, eager); returns the reloaded model."""
    clean_dir(outdir)
    torch.manual_seed(seed)
    model = model_cls(cfg_fn())
    counts = (randomize_gemma3 if model_cls in GEMMA3_CLASSES else randomize)(model, seed)
    model = model.to(save_dtype)
    save_kw = {"safe_serialization": True}
    if max_shard_size is not None:
        save_kw["max_shard_size"] = max_shard_size
    model.save_pretrained(outdir, **save_kw)
    del model
    # Reload from disk in float32 (weights rounded to save_dtype), eager attention / experts.
    model, info = model_cls.from_pretrained(
        outdir,
        dtype=torch.float32,
        attn_implementation="eager",
        experts_implementation="eager",
        output_loading_info=True,
    )
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        assert not info.get(k), f"{name}: {k} = {info.get(k)}"
    model.eval()
    return model, counts


@torch.no_grad()
def evaluate(model, seed):
    text_cfg = model.config.get_text_config()
    vocab = text_cfg.vocab_size
    g = torch.Generator().manual_seed(seed + 1)
    prompt = torch.randint(3, vocab, (1, N_PROMPT), generator=g)
    prompt[0, 0] = text_cfg.bos_token_id
    assert prompt[0, 0].item() == 2

    logits = model(input_ids=prompt).logits[0].float()  # [n, vocab]

    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    out = model.generate(
        prompt, do_sample=False, max_new_tokens=N_GEN, min_new_tokens=N_GEN, eos_token_id=None, pad_token_id=0
    )
    gen = out[0, N_PROMPT:].tolist()
    assert len(gen) == N_GEN, gen

    # every greedy token must be the argmax of a full (uncached) forward over prompt+gen
    full = model(input_ids=out).logits[0].float()
    assert torch.allclose(full[:N_PROMPT], logits, rtol=0, atol=1e-4 * logits.abs().max().item())
    am = full[N_PROMPT - 1 : -1].argmax(-1).tolist()
    assert am == gen, f"greedy mismatch\n{am}\n{gen}"
    top2 = torch.topk(full[N_PROMPT - 1 : -1], 2, dim=-1).values
    top2p = torch.topk(logits, 2, dim=-1).values
    return dict(
        prompt=prompt,
        logits=logits,
        gen=gen,
        gen_margin=(top2[:, 0] - top2[:, 1]).min().item(),
        prompt_margin=(top2p[:, 0] - top2p[:, 1]).min().item(),
        router_gap=router_gaps(model, out) if getattr(text_cfg, "enable_moe_block", False) else None,
        inc_rel=check_incremental(model, prompt, logits[None]),
        f32_noise=(float64_logits(model, prompt) - logits.double()).abs().max().item(),
        std=logits.std(dim=-1),
        amax=logits.abs().max().item(),
        frac_sat=(logits.abs() > 29.0).float().mean().item(),
        n_distinct=len(set(gen)),
        max_run=max(len(list(grp)) for _, grp in itertools.groupby(gen)),
    )


def acceptable(r):
    return (
        r["std"].min().item() > 0.5
        and r["frac_sat"] < 0.01
        and r["n_distinct"] >= MIN_DISTINCT_GEN
        and r["max_run"] <= MAX_RUN_GEN
        and r["gen_margin"] >= MIN_GEN_MARGIN
        and (r["router_gap"] is None or r["router_gap"] >= MIN_ROUTER_GAP)
        and r["f32_noise"] <= MAX_F32_NOISE
        and r["inc_rel"] <= MAX_INC_REL
    )


def build_fixture(name, cfg_fn, model_cls, save_dtype, base_seed, max_shard_size=None, outdir=None):
    """outdir: default tests/golden/<name> (tests/gguf/make_k256.py writes one elsewhere)."""
    print(f"\n=== {name} ===")
    outdir = outdir or os.path.join(HERE, name)
    # Deterministic seed search: the first seed from base_seed on that meets the criteria.
    for seed in range(base_seed, base_seed + MAX_SEED_TRIES):
        model, counts = make_candidate(name, cfg_fn, model_cls, save_dtype, seed, outdir, max_shard_size)
        r = evaluate(model, seed)
        if acceptable(r):
            break
        print(f"seed {seed} rejected: distinct={r['n_distinct']} run={r['max_run']} gen_margin={r['gen_margin']:.4f} "
              f"router_gap={r['router_gap']} f32_noise={r['f32_noise']:.1e} inc_rel={r['inc_rel']:.1e}")
    else:
        raise RuntimeError(f"{name}: no acceptable seed in {MAX_SEED_TRIES} tries")

    # sanity check of the reference itself: cached incremental decode == full prefill
    assert r["inc_rel"] <= 1e-4, f"{name}: incremental decode mismatch, rel {r['inc_rel']}"

    std = r["std"]
    print(f"seed {seed}; randomized tensors by kind: {counts}")
    print(f"logits: std across vocab min/mean/max = {std.min():.3f}/{std.mean():.3f}/{std.max():.3f}, "
          f"max|logit| = {r['amax']:.3f}, frac |logit|>29 = {r['frac_sat']:.5f}")
    print(f"incremental-vs-full max rel diff = {r['inc_rel']:.2e}")
    print(f"float32 reference vs float64 forward: max abs diff = {r['f32_noise']:.2e}")
    print(f"min top1-top2 margin: prompt positions {r['prompt_margin']:.4f}, generated {r['gen_margin']:.4f}")
    if r["router_gap"] is not None:
        print(f"min router log-prob gap between k-th and (k+1)-th expert: {r['router_gap']:.4f}")
    print(f"prompt = {r['prompt'][0].tolist()}")
    print(f"gen ({r['n_distinct']} distinct) = {r['gen']}")

    write_reference(os.path.join(outdir, "reference.bin"), r["prompt"][0].tolist(), r["logits"].numpy(), r["gen"])
    if save_dtype == torch.bfloat16:
        write_bf16act_reference(name, outdir)

    files = sorted(os.listdir(outdir))
    if max_shard_size is not None:
        assert "model.safetensors.index.json" in files
        assert sum(f.endswith(".safetensors") for f in files) >= 2, files
    size = sum(os.path.getsize(os.path.join(outdir, f)) for f in files)
    print(f"files: {files}  ({size / 1024:.1f} KiB)")
    return dict(name=name, seed=seed, size=size, f32_noise=r["f32_noise"], gen_margin=r["gen_margin"],
                inc_rel=r["inc_rel"], router_gap=r["router_gap"])


FIXTURES = [
    # name, config, class, saved dtype, seed, max_shard_size
    ("e2b", cfg_e2b, Gemma4ForCausalLM, torch.float32, 1000, None),
    ("moe", cfg_moe, Gemma4ForCausalLM, torch.bfloat16, 2000, None),
    ("dense31b", cfg_dense31b, Gemma4ForCausalLM, torch.float16, 3000, None),
    ("multimodal", cfg_multimodal, Gemma4ForConditionalGeneration, torch.float32, 4000, "300KB"),
    ("tie_mm_untied", cfg_tie_mm_untied, Gemma4ForConditionalGeneration, torch.float32, 5000, None),
    ("tie_mm_tied", cfg_tie_mm_tied, Gemma4ForConditionalGeneration, torch.float32, 5100, None),
    ("head_dim_eq", cfg_head_dim_eq, Gemma4ForCausalLM, torch.float32, 5200, None),
    ("rope_partial", cfg_rope_partial, Gemma4ForCausalLM, torch.float32, 5300, None),
    ("rope_factor", cfg_rope_factor, Gemma4ForCausalLM, torch.float32, 5400, None),
]
GEMMA3_CLASSES = (Gemma3ForCausalLM, Gemma3ForConditionalGeneration)
GEMMA3_FIXTURES = [
    ("gemma3", cfg_gemma3, Gemma3ForCausalLM, torch.float32, 5000, None),
    ("gemma3_sliding", cfg_gemma3_sliding, Gemma3ForCausalLM, torch.float16, 6000, None),
    ("gemma3_multimodal", cfg_gemma3_multimodal, Gemma3ForConditionalGeneration, torch.float32, 7000, None),
]


def main():
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    if sys.argv[1:] == ["--bf16act"]:
        for name, _, _, dt, _, _ in FIXTURES:
            if dt == torch.bfloat16:
                write_bf16act_reference(name)
        return
    only = set(sys.argv[1:])
    if only == {"--gemma3"}:
        only = {f[0] for f in GEMMA3_FIXTURES}
    results = []
    for name, cfg_fn, cls, dt, seed, shard in FIXTURES + GEMMA3_FIXTURES:
        if only and name not in only:
            continue
        results.append(build_fixture(name, cfg_fn, cls, dt, seed, shard))
    total = 0
    for root, _, fns in os.walk(HERE):
        if "__pycache__" in root:
            continue
        total += sum(os.path.getsize(os.path.join(root, f)) for f in fns)
    for r in results:
        print(f"{r['name']}: seed {r['seed']}, {r['size'] / 1024:.1f} KiB, f32 noise {r['f32_noise']:.1e}, "
              f"inc rel {r['inc_rel']:.1e}, min greedy margin {r['gen_margin']:.3f}, router gap {r['router_gap']}")
    print(f"\ntotal size of {HERE}: {total / 1024:.1f} KiB")
    assert total < 10 * 1024 * 1024


if __name__ == "__main__":
    main()

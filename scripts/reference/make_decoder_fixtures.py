#!/usr/bin/env python3
"""Independent PyTorch references for peft4j's decoder families (GPT-2, LLaMA/Mistral/Qwen2)
and a tiny BERT encoder.

Hugging Face `transformers` is not installable here (no PyPI), so each architecture is written
out below in plain PyTorch from the published model definitions (checked against the
huggingface/transformers sources): GPT-2 `GPT2LMHeadModel` (Conv1D weights stored [in, out],
`gelu_new` tanh GELU, learned positions, tied `lm_head`), LLaMA `LlamaForCausalLM` (RMSNorm in
fp32 `x * rsqrt(mean(x^2) + eps) * weight`, `rotate_half` RoPE with `rope_theta` and an explicit
`head_dim`, grouped-query attention via repeat_kv, SwiGLU `down(silu(gate(x)) * up(x))`,
optional `attention_bias` on q/k/v/o (LLaMA) or q/k/v only (Qwen2), optional tied `lm_head`)
and `BertModel` (post-LN encoder, exact erf GELU, tanh pooler).

For every config the script writes, into
`peft-core/src/test/resources/fixtures/decoders/<name>/`:
  config.json         Hugging Face field names
  model.safetensors   Hugging Face key names, written by this script (no safetensors package)
  reference.safetensors
      input_ids [B,T] I64, attention_mask [B,T] I64, position_ids [B,T] I64
      logits [B,T,V] F32  (compare only where attention_mask == 1: padded rows are garbage in HF)
      hidden_states.<i> [B,T,H] F32 for i = 0..L (HF output_hidden_states: embeddings, each
                        layer's output, the last one after the final norm)
      loss_weights [B,T,V] F32 and grad.<param name> F32: gradient of
                        loss = sum(logits * loss_weights * attention_mask[..., None])
      gen.prompt_ids [B,P] I64 (left padded), gen.prompt_mask [B,P] I64,
      gen.output_ids [B,N] I64: greedy continuation, recomputing the whole sequence each step
                        with HF generate()'s positions (cumsum(mask) - 1, pads set to 1)
  reference.json      metadata: loss definition, gradient names, generation settings, the
                      smallest top-1/top-2 logit gap met during greedy decoding

and a tiny BertModel into `peft-core/src/test/resources/fixtures/bert-tiny/` with its
`last_hidden_state` and `pooler_output` for fixed ids, token types and mask.

Run with Debian's torch: `/usr/bin/python3 scripts/reference/make_decoder_fixtures.py`.
The output is deterministic for a given torch build (fixed seeds).
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "peft-core", "src", "test", "resources", "fixtures")

torch.set_default_dtype(torch.float32)
torch.set_num_threads(1)

# --------------------------------------------------------------------------------------------
# safetensors writer / reader (format: u64 little-endian header length, JSON header with
# dtype/shape/data_offsets per tensor and optional __metadata__, then the raw little-endian data)
# --------------------------------------------------------------------------------------------
_DT = {np.dtype("float32"): "F32", np.dtype("int64"): "I64", np.dtype("uint8"): "U8",
       np.dtype("float16"): "F16", np.dtype("int32"): "I32"}
_NP = {v: k for k, v in _DT.items()}


def write_safetensors(path, tensors, metadata=None):
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a = tensors[name]
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        a = np.ascontiguousarray(a)
        if a.dtype not in _DT:
            raise ValueError(f"{name}: unsupported dtype {a.dtype}")
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DT[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)  # the reference writer pads the header to 8 bytes
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(data[s:e], dtype=_NP[v["dtype"]].newbyteorder("<")).reshape(v["shape"])
    return out


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------
NEG = torch.finfo(torch.float32).min  # HF's additive mask value


def gelu_new(x):
    # HF ACT2FN["gelu_new"] / "gelu_pytorch_tanh": the tanh approximation
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def act(name, x):
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return gelu_new(x)
    if name == "gelu":
        return gelu_erf(x)
    if name in ("silu", "swish"):
        return x * torch.sigmoid(x)
    if name == "relu":
        return torch.relu(x)
    raise ValueError(name)


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)  # biased variance, as torch.nn.LayerNorm
    return (x - mu) / torch.sqrt(var + eps) * w + b


def rms_norm(x, w, eps):
    x32 = x.to(torch.float32)
    var = x32.pow(2).mean(-1, keepdim=True)
    return w * (x32 * torch.rsqrt(var + eps)).to(x.dtype)


def causal_padding_bias(mask):
    """Additive bias [B,1,T,T]: 0 where key j <= query i and mask[b, j] == 1, else float32 min.

    HF adds the causal and padding terms; both are float32 min, and their sum saturates to -inf in
    float32, which is harmless for rows that still have a visible key (exp(-inf) = 0). Rows with no
    visible key (a left pad at position 0) would become NaN with -inf, so the bias is clamped to
    float32 min, as HF's mask builders do, giving finite (meaningless) pad-row outputs."""
    B, T = mask.shape
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    allowed = causal[None, None, :, :] & (mask[:, None, None, :] == 1)
    return torch.where(allowed, torch.zeros(()), torch.full((), NEG))


def hf_positions(mask):
    """HF generate()'s positions: cumsum(mask) - 1 with pad positions set to 1. For unpadded or
    right-padded input this equals arange(T) on every real token (HF forward's default)."""
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 1)


# --------------------------------------------------------------------------------------------
# GPT-2 (GPT2LMHeadModel)
# --------------------------------------------------------------------------------------------
def gpt2_init(cfg, g):
    H, L, V, P = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"], cfg["n_positions"]
    inner = cfg.get("n_inner") or 4 * H
    p = {}

    def rnd(*shape, std=0.3):
        return torch.randn(*shape, generator=g) * std

    p["transformer.wte.weight"] = rnd(V, H, std=0.5)
    p["transformer.wpe.weight"] = rnd(P, H, std=0.2)
    for i in range(L):
        pre = f"transformer.h.{i}."
        p[pre + "ln_1.weight"] = 1.0 + rnd(H, std=0.1)
        p[pre + "ln_1.bias"] = rnd(H, std=0.1)
        p[pre + "attn.c_attn.weight"] = rnd(H, 3 * H)        # Conv1D: [in, out]
        p[pre + "attn.c_attn.bias"] = rnd(3 * H, std=0.1)
        p[pre + "attn.c_proj.weight"] = rnd(H, H)
        p[pre + "attn.c_proj.bias"] = rnd(H, std=0.1)
        p[pre + "ln_2.weight"] = 1.0 + rnd(H, std=0.1)
        p[pre + "ln_2.bias"] = rnd(H, std=0.1)
        p[pre + "mlp.c_fc.weight"] = rnd(H, inner)
        p[pre + "mlp.c_fc.bias"] = rnd(inner, std=0.1)
        p[pre + "mlp.c_proj.weight"] = rnd(inner, H, std=0.15)
        p[pre + "mlp.c_proj.bias"] = rnd(H, std=0.1)
    p["transformer.ln_f.weight"] = 1.0 + rnd(H, std=0.1)
    p["transformer.ln_f.bias"] = rnd(H, std=0.1)
    if not cfg.get("tie_word_embeddings", True):
        p["lm_head.weight"] = rnd(V, H)
    return p


def gpt2_forward(p, cfg, ids, mask, pos):
    H, L, nh = cfg["n_embd"], cfg["n_layer"], cfg["n_head"]
    dh = H // nh
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    B, T = ids.shape
    x = p["transformer.wte.weight"][ids] + p["transformer.wpe.weight"][pos]
    hidden = [x]
    bias = causal_padding_bias(mask)
    for i in range(L):
        pre = f"transformer.h.{i}."
        h = layer_norm(x, p[pre + "ln_1.weight"], p[pre + "ln_1.bias"], eps)
        qkv = h @ p[pre + "attn.c_attn.weight"] + p[pre + "attn.c_attn.bias"]
        q, k, v = qkv.split(H, dim=-1)
        q, k, v = (t.view(B, T, nh, dh).permute(0, 2, 1, 3) for t in (q, k, v))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(dh) + bias
        a = torch.softmax(s, dim=-1) @ v
        a = a.permute(0, 2, 1, 3).reshape(B, T, H)
        x = x + a @ p[pre + "attn.c_proj.weight"] + p[pre + "attn.c_proj.bias"]
        h = layer_norm(x, p[pre + "ln_2.weight"], p[pre + "ln_2.bias"], eps)
        m = act(cfg.get("activation_function", "gelu_new"), h @ p[pre + "mlp.c_fc.weight"] + p[pre + "mlp.c_fc.bias"])
        x = x + m @ p[pre + "mlp.c_proj.weight"] + p[pre + "mlp.c_proj.bias"]
        hidden.append(x)
    x = layer_norm(x, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], eps)
    hidden[-1] = x  # HF replaces the last hidden state by the final-norm output
    head = p.get("lm_head.weight", p["transformer.wte.weight"])
    return x @ head.T, hidden


# --------------------------------------------------------------------------------------------
# LLaMA family (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)
# --------------------------------------------------------------------------------------------
def llama_dims(cfg):
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    dh = cfg.get("head_dim") or cfg["hidden_size"] // nh
    return nh, nkv, dh


def llama_biases(cfg):
    """(q/k/v bias, o bias): Qwen2 always has q/k/v biases and no o bias; LLaMA/Mistral use
    attention_bias for all four projections."""
    if cfg["model_type"] == "qwen2":
        return True, False
    ab = bool(cfg.get("attention_bias", False))
    return ab, ab


def llama_init(cfg, g):
    H, I, L, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    nh, nkv, dh = llama_dims(cfg)
    qkv_b, o_b = llama_biases(cfg)
    mlp_b = bool(cfg.get("mlp_bias", False))
    p = {}

    def rnd(*shape, std=0.3):
        return torch.randn(*shape, generator=g) * std

    p["model.embed_tokens.weight"] = rnd(V, H, std=0.5)
    for i in range(L):
        pre = f"model.layers.{i}."
        p[pre + "input_layernorm.weight"] = 1.0 + rnd(H, std=0.1)
        p[pre + "self_attn.q_proj.weight"] = rnd(nh * dh, H)     # nn.Linear: [out, in]
        p[pre + "self_attn.k_proj.weight"] = rnd(nkv * dh, H)
        p[pre + "self_attn.v_proj.weight"] = rnd(nkv * dh, H)
        p[pre + "self_attn.o_proj.weight"] = rnd(H, nh * dh)
        if qkv_b:
            p[pre + "self_attn.q_proj.bias"] = rnd(nh * dh, std=0.1)
            p[pre + "self_attn.k_proj.bias"] = rnd(nkv * dh, std=0.1)
            p[pre + "self_attn.v_proj.bias"] = rnd(nkv * dh, std=0.1)
        if o_b:
            p[pre + "self_attn.o_proj.bias"] = rnd(H, std=0.1)
        p[pre + "post_attention_layernorm.weight"] = 1.0 + rnd(H, std=0.1)
        p[pre + "mlp.gate_proj.weight"] = rnd(I, H)
        p[pre + "mlp.up_proj.weight"] = rnd(I, H)
        p[pre + "mlp.down_proj.weight"] = rnd(H, I, std=0.2)
        if mlp_b:
            p[pre + "mlp.gate_proj.bias"] = rnd(I, std=0.1)
            p[pre + "mlp.up_proj.bias"] = rnd(I, std=0.1)
            p[pre + "mlp.down_proj.bias"] = rnd(H, std=0.1)
    p["model.norm.weight"] = 1.0 + rnd(H, std=0.1)
    if not cfg.get("tie_word_embeddings", False):
        p["lm_head.weight"] = rnd(V, H)
    return p


def rope_cos_sin(pos, dh, theta):
    # HF default rope: inv_freq = 1 / theta^(2i/d) in fp32; emb = cat(freqs, freqs)
    inv_freq = 1.0 / (theta ** (torch.arange(0, dh, 2, dtype=torch.int64).float() / dh))
    freqs = pos.float()[..., None] * inv_freq[None, None, :]   # [B,T,dh/2]
    emb = torch.cat((freqs, freqs), dim=-1)                    # [B,T,dh]
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def linear(x, p, name):
    y = x @ p[name + ".weight"].T
    b = p.get(name + ".bias")
    return y if b is None else y + b


def llama_forward(p, cfg, ids, mask, pos):
    H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    nh, nkv, dh = llama_dims(cfg)
    eps = cfg.get("rms_norm_eps", 1e-6)
    theta = cfg.get("rope_theta", 10000.0)
    B, T = ids.shape
    x = p["model.embed_tokens.weight"][ids]
    hidden = [x]
    bias = causal_padding_bias(mask)
    cos, sin = rope_cos_sin(pos, dh, theta)
    cos, sin = cos[:, None], sin[:, None]                      # [B,1,T,dh]
    for i in range(L):
        pre = f"model.layers.{i}."
        h = rms_norm(x, p[pre + "input_layernorm.weight"], eps)
        q = linear(h, p, pre + "self_attn.q_proj").view(B, T, nh, dh).transpose(1, 2)
        k = linear(h, p, pre + "self_attn.k_proj").view(B, T, nkv, dh).transpose(1, 2)
        v = linear(h, p, pre + "self_attn.v_proj").view(B, T, nkv, dh).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = nh // nkv                                        # repeat_kv: kv head j serves q heads j*rep..
        k = k[:, :, None].expand(B, nkv, rep, T, dh).reshape(B, nh, T, dh)
        v = v[:, :, None].expand(B, nkv, rep, T, dh).reshape(B, nh, T, dh)
        s = (q @ k.transpose(-1, -2)) * dh ** -0.5 + bias
        a = torch.softmax(s.float(), dim=-1) @ v
        a = a.transpose(1, 2).reshape(B, T, nh * dh)
        x = x + linear(a, p, pre + "self_attn.o_proj")
        h = rms_norm(x, p[pre + "post_attention_layernorm.weight"], eps)
        g = linear(h, p, pre + "mlp.gate_proj")
        u = linear(h, p, pre + "mlp.up_proj")
        x = x + linear(act(cfg.get("hidden_act", "silu"), g) * u, p, pre + "mlp.down_proj")
        hidden.append(x)
    x = rms_norm(x, p["model.norm.weight"], eps)
    hidden[-1] = x
    head = p.get("lm_head.weight", p["model.embed_tokens.weight"])
    return x @ head.T, hidden


# --------------------------------------------------------------------------------------------
# BERT (BertModel)
# --------------------------------------------------------------------------------------------
def bert_init(cfg, g):
    H, I, L, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    P, TV = cfg["max_position_embeddings"], cfg["type_vocab_size"]
    p = {}

    def rnd(*shape, std=0.3):
        return torch.randn(*shape, generator=g) * std

    p["embeddings.word_embeddings.weight"] = rnd(V, H, std=0.5)
    p["embeddings.position_embeddings.weight"] = rnd(P, H, std=0.2)
    p["embeddings.token_type_embeddings.weight"] = rnd(TV, H, std=0.2)
    p["embeddings.LayerNorm.weight"] = 1.0 + rnd(H, std=0.1)
    p["embeddings.LayerNorm.bias"] = rnd(H, std=0.1)
    for i in range(L):
        pre = f"encoder.layer.{i}."
        for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            p[pre + n + ".weight"] = rnd(H, H)
            p[pre + n + ".bias"] = rnd(H, std=0.1)
        p[pre + "attention.output.LayerNorm.weight"] = 1.0 + rnd(H, std=0.1)
        p[pre + "attention.output.LayerNorm.bias"] = rnd(H, std=0.1)
        p[pre + "intermediate.dense.weight"] = rnd(I, H)
        p[pre + "intermediate.dense.bias"] = rnd(I, std=0.1)
        p[pre + "output.dense.weight"] = rnd(H, I, std=0.2)
        p[pre + "output.dense.bias"] = rnd(H, std=0.1)
        p[pre + "output.LayerNorm.weight"] = 1.0 + rnd(H, std=0.1)
        p[pre + "output.LayerNorm.bias"] = rnd(H, std=0.1)
    p["pooler.dense.weight"] = rnd(H, H)
    p["pooler.dense.bias"] = rnd(H, std=0.1)
    return p


def bert_forward(p, cfg, ids, token_types, mask):
    H, L, nh = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
    dh = H // nh
    eps = cfg["layer_norm_eps"]
    B, T = ids.shape
    pos = torch.arange(T)[None, :].expand(B, T)
    x = (p["embeddings.word_embeddings.weight"][ids] + p["embeddings.position_embeddings.weight"][pos]
         + p["embeddings.token_type_embeddings.weight"][token_types])
    x = layer_norm(x, p["embeddings.LayerNorm.weight"], p["embeddings.LayerNorm.bias"], eps)
    bias = (1.0 - mask[:, None, None, :].float()) * NEG       # BertModel's extended mask
    for i in range(L):
        pre = f"encoder.layer.{i}."
        q = linear(x, p, pre + "attention.self.query").view(B, T, nh, dh).transpose(1, 2)
        k = linear(x, p, pre + "attention.self.key").view(B, T, nh, dh).transpose(1, 2)
        v = linear(x, p, pre + "attention.self.value").view(B, T, nh, dh).transpose(1, 2)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(dh) + bias
        a = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, H)
        x = layer_norm(linear(a, p, pre + "attention.output.dense") + x,
                       p[pre + "attention.output.LayerNorm.weight"], p[pre + "attention.output.LayerNorm.bias"], eps)
        m = act(cfg["hidden_act"], linear(x, p, pre + "intermediate.dense"))
        x = layer_norm(linear(m, p, pre + "output.dense") + x,
                       p[pre + "output.LayerNorm.weight"], p[pre + "output.LayerNorm.bias"], eps)
    pooled = torch.tanh(linear(x[:, 0], p, "pooler.dense"))
    return x, pooled


# --------------------------------------------------------------------------------------------
# Fixture builders
# --------------------------------------------------------------------------------------------
def padded_batch(g, vocab, lengths, T, side, pad_id=0):
    ids = torch.full((len(lengths), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(lengths), T), dtype=torch.long)
    for b, n in enumerate(lengths):
        toks = torch.randint(1, vocab, (n,), generator=g)
        if side == "right":
            ids[b, :n] = toks
            mask[b, :n] = 1
        else:
            ids[b, T - n:] = toks
            mask[b, T - n:] = 1
    return ids, mask


def greedy(forward, p, cfg, prompt_ids, prompt_mask, n_new):
    """Recompute-everything greedy decoding with HF generate()'s padding conventions: left-padded
    prompts, the mask grows by one 1 per step, positions = cumsum(mask) - 1."""
    ids, mask = prompt_ids.clone(), prompt_mask.clone()
    out = []
    min_gap = float("inf")
    with torch.no_grad():
        for _ in range(n_new):
            logits, _ = forward(p, cfg, ids, mask, hf_positions(mask))
            last = logits[:, -1, :]
            top2 = torch.topk(last, 2, dim=-1).values
            min_gap = min(min_gap, float((top2[:, 0] - top2[:, 1]).min()))
            nxt = last.argmax(-1)
            out.append(nxt)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            mask = torch.cat([mask, torch.ones_like(nxt)[:, None]], dim=1)
    return torch.stack(out, dim=1), min_gap


def build_decoder(name, cfg, family, seed, lengths, T, side, grad_names, gen_lengths, gen_P, n_new,
                  extra_file_tensors=None):
    g = torch.Generator().manual_seed(seed)
    init, forward = (gpt2_init, gpt2_forward) if family == "gpt2" else (llama_init, llama_forward)
    vocab = cfg["vocab_size"]
    params = init(cfg, g)
    out_dir = os.path.join(FIXTURES, "decoders", name)
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, "config.json"), cfg)
    file_tensors = dict(params)
    if extra_file_tensors:
        file_tensors.update(extra_file_tensors(cfg))
    write_safetensors(os.path.join(out_dir, "model.safetensors"), file_tensors, {"format": "pt"})

    # logits, hidden states and gradients of a weighted sum of logits on a padded batch
    ids, mask = padded_batch(g, vocab, lengths, T, side)
    pos = hf_positions(mask)
    leaf = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    logits, hidden = forward(leaf, cfg, ids, mask, pos)
    w = torch.randn(logits.shape, generator=g)
    loss = (logits * w * mask[..., None].float()).sum()
    loss.backward()
    assert torch.isfinite(logits).all(), name
    # Self-check of the masking and position conventions: each row run alone, unpadded, must give
    # the same logits on its real tokens as inside the padded batch.
    with torch.no_grad():
        for b in range(ids.shape[0]):
            keep = mask[b] == 1
            solo_ids = ids[b][keep][None]
            solo_mask = torch.ones_like(solo_ids)
            solo, _ = forward(params, cfg, solo_ids, solo_mask, hf_positions(solo_mask))
            err = (solo[0] - logits.detach()[b][keep]).abs().max().item()
            assert err < 1e-4, f"{name}: row {b} padded vs alone differ by {err}"

    ref = {"input_ids": ids, "attention_mask": mask, "position_ids": pos,
           "logits": logits.detach(), "loss_weights": w}
    for i, h in enumerate(hidden):
        ref[f"hidden_states.{i}"] = h.detach()
    for gname in grad_names:
        ref["grad." + gname] = leaf[gname].grad
    # greedy generation from a left-padded prompt batch
    p_ids, p_mask = padded_batch(g, vocab, gen_lengths, gen_P, "left")
    gen, gap = greedy(forward, params, cfg, p_ids, p_mask, n_new)
    ref["gen.prompt_ids"] = p_ids
    ref["gen.prompt_mask"] = p_mask
    ref["gen.output_ids"] = gen
    if gap < 1e-3:
        raise SystemExit(f"{name}: greedy top-1/top-2 gap {gap:.2e} too small for a robust test; change the seed")
    write_safetensors(os.path.join(out_dir, "reference.safetensors"), ref)
    write_json(os.path.join(out_dir, "reference.json"), {
        "family": family,
        "padding_side": side,
        "loss": "sum(logits * loss_weights * attention_mask[..., None])",
        "positions": "cumsum(attention_mask) - 1, pads set to 1 (HF generate); equals arange for right padding",
        "compare_logits_where": "attention_mask == 1",
        "gradients": grad_names,
        "generation": {"strategy": "greedy", "max_new_tokens": n_new, "padding_side": "left",
                       "min_top1_top2_gap": gap},
        "torch_version": torch.__version__,
        "seed": seed,
    })
    n_params = sum(v.numel() for v in params.values())
    print(f"{name}: {n_params} params, logits {tuple(logits.shape)}, loss {loss.item():.4f}, "
          f"greedy gap {gap:.4f}, generated {gen.tolist()}")
    return params


def gpt2_buffers(cfg):
    """The causal-mask buffers old GPT-2 checkpoints carry (e.g. the original hub file stores
    `h.N.attn.bias` as F32 [1,1,n_positions,n_positions]); loaders must ignore them."""
    P = cfg["n_positions"]
    tri = torch.tril(torch.ones(P, P)).view(1, 1, P, P)
    return {f"h.{i}.attn.bias": tri for i in range(cfg["n_layer"])}


def main():
    # GPT-2, tied lm_head, GPT2LMHeadModel keys (transformer.*), right padding
    gpt2_cfg = {
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
        "vocab_size": 64, "n_positions": 32, "n_embd": 16, "n_layer": 2, "n_head": 2, "n_inner": None,
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "resid_pdrop": 0.1,
        "embd_pdrop": 0.1, "attn_pdrop": 0.1, "initializer_range": 0.02, "scale_attn_weights": True,
        "use_cache": True, "bos_token_id": 63, "eos_token_id": 63, "tie_word_embeddings": True,
    }
    gpt2_params = build_decoder(
        "gpt2", gpt2_cfg, "gpt2", seed=1234, lengths=[9, 6], T=9, side="right",
        grad_names=["transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight",
                    "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_attn.bias",
                    "transformer.h.1.attn.c_proj.weight", "transformer.h.1.mlp.c_fc.weight",
                    "transformer.h.1.mlp.c_proj.bias", "transformer.ln_f.bias"],
        gen_lengths=[5, 3], gen_P=5, n_new=8)

    # The same GPT-2 weights saved as the hub's GPT2Model layout: no "transformer." prefix and
    # the old attn.bias buffers. Same outputs as "gpt2" (its reference is that folder's).
    bare_dir = os.path.join(FIXTURES, "decoders", "gpt2-bare")
    os.makedirs(bare_dir, exist_ok=True)
    write_json(os.path.join(bare_dir, "config.json"), dict(gpt2_cfg, architectures=["GPT2Model"]))
    bare = {k[len("transformer."):]: v for k, v in gpt2_params.items()}
    bare.update(gpt2_buffers(gpt2_cfg))
    write_safetensors(os.path.join(bare_dir, "model.safetensors"), bare, {"format": "pt"})

    llama_common = {"hidden_act": "silu", "initializer_range": 0.02, "use_cache": True,
                    "bos_token_id": 1, "eos_token_id": 2, "attention_dropout": 0.0, "rope_scaling": None,
                    "pretraining_tp": 1, "mlp_bias": False}
    # LLaMA with grouped-query attention (4 heads, 2 kv heads), tied embeddings (SmolLM-style)
    build_decoder(
        "llama-gqa",
        dict(llama_common, model_type="llama", architectures=["LlamaForCausalLM"], vocab_size=96,
             hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=64,
             tie_word_embeddings=True, attention_bias=False),
        "llama", seed=2024, lengths=[10, 7], T=10, side="left",
        grad_names=["model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
                    "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
                    "model.layers.1.self_attn.v_proj.weight", "model.layers.1.self_attn.o_proj.weight",
                    "model.layers.1.mlp.gate_proj.weight", "model.layers.0.mlp.down_proj.weight",
                    "model.norm.weight"],
        gen_lengths=[6, 4], gen_P=6, n_new=8)
    # LLaMA, untied lm_head, explicit head_dim 8 != hidden 24 / 4 heads, attention_bias on q/k/v/o
    build_decoder(
        "llama-headdim",
        dict(llama_common, model_type="llama", architectures=["LlamaForCausalLM"], vocab_size=64,
             hidden_size=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, head_dim=8, rms_norm_eps=1e-6, rope_theta=500000.0,
             max_position_embeddings=48, tie_word_embeddings=False, attention_bias=True),
        "llama", seed=77, lengths=[8, 5], T=8, side="right",
        grad_names=["model.embed_tokens.weight", "lm_head.weight", "model.layers.0.self_attn.q_proj.weight",
                    "model.layers.0.self_attn.q_proj.bias", "model.layers.0.self_attn.o_proj.bias",
                    "model.layers.1.self_attn.k_proj.weight", "model.layers.1.mlp.up_proj.weight",
                    "model.layers.1.post_attention_layernorm.weight"],
        gen_lengths=[5, 2], gen_P=5, n_new=8)
    # Qwen2: q/k/v biases, no o_proj bias, tied embeddings, rope_theta 1e6
    build_decoder(
        "qwen2",
        dict(llama_common, model_type="qwen2", architectures=["Qwen2ForCausalLM"], vocab_size=80,
             hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1000000.0, max_position_embeddings=64,
             tie_word_embeddings=True, use_sliding_window=False, sliding_window=None, max_window_layers=2),
        "llama", seed=99, lengths=[9, 4], T=9, side="left",
        grad_names=["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.bias",
                    "model.layers.0.self_attn.k_proj.bias", "model.layers.1.self_attn.v_proj.bias",
                    "model.layers.1.self_attn.v_proj.weight", "model.layers.0.mlp.down_proj.weight",
                    "model.norm.weight"],
        gen_lengths=[4, 3], gen_P=4, n_new=8)
    # Mistral: LLaMA architecture, 4 heads / 1 kv head (MQA), untied, sliding window larger than
    # any sequence here (so it never masks anything)
    build_decoder(
        "mistral",
        dict(llama_common, model_type="mistral", architectures=["MistralForCausalLM"], vocab_size=64,
             hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=1, rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=128,
             tie_word_embeddings=False, sliding_window=4096),
        "llama", seed=5, lengths=[7, 7], T=7, side="right",
        grad_names=["model.layers.0.self_attn.k_proj.weight", "model.layers.1.self_attn.q_proj.weight",
                    "model.layers.1.mlp.down_proj.weight", "lm_head.weight"],
        gen_lengths=[3, 5], gen_P=5, n_new=10)

    # Tiny BertModel
    bert_cfg = {"model_type": "bert", "architectures": ["BertModel"], "vocab_size": 50, "hidden_size": 16,
                "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32, "hidden_act": "gelu",
                "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 32,
                "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
                "position_embedding_type": "absolute", "use_cache": True, "classifier_dropout": None}
    g = torch.Generator().manual_seed(4242)
    bp = bert_init(bert_cfg, g)
    bert_dir = os.path.join(FIXTURES, "bert-tiny")
    os.makedirs(bert_dir, exist_ok=True)
    write_json(os.path.join(bert_dir, "config.json"), bert_cfg)
    write_safetensors(os.path.join(bert_dir, "model.safetensors"), bp, {"format": "pt"})
    ids, mask = padded_batch(g, bert_cfg["vocab_size"], [8, 5], 8, "right")
    ids[:, 0] = 2  # a [CLS]-like first token
    tt = torch.zeros_like(ids)
    tt[0, 4:8] = 1
    with torch.no_grad():
        last, pooled = bert_forward(bp, bert_cfg, ids, tt, mask)
    write_safetensors(os.path.join(bert_dir, "reference.safetensors"),
                      {"input_ids": ids, "token_type_ids": tt, "attention_mask": mask,
                       "last_hidden_state": last, "pooler_output": pooled})
    write_json(os.path.join(bert_dir, "reference.json"), {
        "family": "bert", "padding_side": "right", "compare": "all positions (pad rows attend to real keys)",
        "outputs": ["last_hidden_state", "pooler_output"], "torch_version": torch.__version__, "seed": 4242})
    print(f"bert-tiny: {sum(v.numel() for v in bp.values())} params, last_hidden_state {tuple(last.shape)}")

    # Round-trip the writer once so a broken writer cannot produce silently wrong fixtures.
    back = read_safetensors(os.path.join(bert_dir, "model.safetensors"))
    for k, v in bp.items():
        assert np.array_equal(back[k], v.numpy()), k
    total = 0
    for dp, _, fs in os.walk(FIXTURES):
        for f in fs:
            if "decoders" in dp or "bert-tiny" in dp:
                total += os.path.getsize(os.path.join(dp, f))
    print(f"fixture bytes: {total}")


if __name__ == "__main__":
    sys.exit(main())

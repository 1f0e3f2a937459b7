#!/usr/bin/env python3
"""Plain-PyTorch references for peft4j's prompt-learning methods (Hugging Face PEFT semantics).

PEFT is not installable here (no PyPI), so the three methods are written out from PEFT's
sources over the tiny decoder fixtures of make_decoder_fixtures.py (GPT-2 and LLaMA with
grouped-query attention, read from peft-core/src/test/resources/fixtures/decoders/<name>/):

  PROMPT_TUNING  prompt_embeddings [n, hidden] = nn.Embedding(n, hidden).weight; the model runs on
                 inputs_embeds = cat(prompts, wte(ids)) with positions 0..n+T-1 (HF forward's
                 arange), attention mask = cat(ones(n), mask).
  P_TUNING       PEFT's PromptEncoder over arange(n): MLP = Linear(d,h) ReLU Linear(h,h) ReLU
                 Linear(h,d); LSTM = bidirectional nn.LSTM(d, h, layers, batch_first) then
                 Linear(2h,2h) ReLU Linear(2h,d). prompt_embeddings = encoder output [n, d].
  PREFIX_TUNING  prompt_embeddings [n, L*2*token_dim], token_dim = head_dim * num_key_value_heads;
                 past_key_values = view(B, n, 2L, kv_heads, head_dim).permute(2,0,3,1,4).split(2):
                 layer i's key = entry 2i, value = 2i+1 ([B, kv, n, hd]), used as the KV cache (no
                 rotary), real tokens at positions n..n+T-1, attending to the whole prefix and
                 causally to each other. prefix_projection: Embedding(n, token_dim) -> Linear(token_dim,
                 h) -> tanh -> Linear(h, L*2*token_dim).

BERT (the tiny bert-tiny encoder of make_decoder_fixtures.py, with a classification head as
transformers' BertForSequenceClassification: pooler tanh(dense(h[:, 0])) -> classifier; eval mode):
  PROMPT_TUNING / P_TUNING  inputs_embeds = cat(prompts, word_embeddings(ids)); BertEmbeddings adds
                 positions 0..n+T-1 and token types cat(zeros(n), token_type_ids), then its LayerNorm;
                 attention mask cat(ones(n), mask). The pooler reads position 0, the first virtual token
                 (what PEFT + transformers do).
  PREFIX_TUNING  past_key_values as above (nkv = heads, token_dim = hidden); BertEmbeddings gives the
                 real tokens positions n..n+T-1 (past_key_values_length = n); token types unchanged; every
                 real token attends to the whole prefix and to the real (unpadded) tokens, both ways.
  The classifier is saved as a modules_to_save tensor (base_model.model.classifier.weight/bias),
  task_type SEQ_CLS; reference.safetensors also holds token_type_ids, attention_mask and
  last_hidden_state [B, n+T or T, H].

Writes, into peft-prompt/src/test/resources/fixtures/prompt/<model>-<method>/:
  adapter_config.json               PEFT's keys
  adapter_model.safetensors         prompt_embeddings (the encoder output)
  peft4j_prompt_encoder.safetensors the encoder's own weights (PEFT names under prompt_encoder.default.)
                                    for P-tuning and projected prefixes (peft4j's resume file)
  reference.safetensors             input_ids [B,T] I64, logits [B, n+T or T, V] F32

Decoder sequence classification (transformers' GPT2ForSequenceClassification / LlamaForSequenceClassification):
  score = Linear(hidden, num_labels, bias=False) on the final hidden state of the last non-padding token,
  transformers' rule argmax(arange(T) * (input_ids != pad_token_id)) (the rightmost id that is not the pad
  id; pad_token_id 3 here). Checkpoints (config + decoder keys without lm_head + score.weight) go to
  peft-core/src/test/resources/fixtures/decoders-seqcls/<model>/ (gpt2, llama-gqa, llama-headdim: untied,
  biases). Prompt-method adapters on them (<model>-seqcls-<method>: prompt_embeddings +
  base_model.model.score.weight, modules_to_save [score], task_type SEQ_CLS): prompt tuning / P-tuning shift
  the pooled index by the n virtual tokens in front (PEFT gives transformers only inputs_embeds, and it then
  takes the last position: the same token unless a row is right-padded; this reference and peft4j keep the
  last real token); prefix tuning does not shift it. Row 1 of the inputs holds the pad id inside (a real
  token, mask 1) and is right-padded by 2.
`--check-classifier DIR MODEL` checks a classifier folder peft4j saved (config keys, keys, logits recomputed
from DIR/peft4j_logits.safetensors: input_ids, attention_mask, logits).

`--check DIR MODEL` checks a folder peft4j saved: PEFT's config keys and values for MODEL, the one
tensor prompt_embeddings of the right shape, and (when DIR/peft4j_logits.safetensors holds
input_ids and logits written by the Java test) logits recomputed here from prompt_embeddings
within 1e-4. Exit status 0 = ok.

Run with Debian's torch: /usr/bin/python3 scripts/reference/make_prompt_fixtures.py
"""
import importlib.util
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("dec", os.path.join(HERE, "make_decoder_fixtures.py"))
dec = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dec)

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DECODERS = os.path.join(ROOT, "peft-core", "src", "test", "resources", "fixtures", "decoders")
BERT_DIR = os.path.join(ROOT, "peft-core", "src", "test", "resources", "fixtures", "bert-tiny")
OUT = os.path.join(ROOT, "peft-prompt", "src", "test", "resources", "fixtures", "prompt")
NEG = torch.finfo(torch.float32).min
torch.set_num_threads(1)


def load_model(name):
    d = BERT_DIR if name == "bert" else os.path.join(DECODERS, name)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    p = {k: torch.tensor(np.array(v)) for k, v in dec.read_safetensors(os.path.join(d, "model.safetensors")).items()}
    return cfg, p


def dims(cfg):
    if cfg["model_type"] == "bert":
        H, L, nh = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
        return dict(H=H, L=L, nh=nh, nkv=nh, dh=H // nh, V=cfg["vocab_size"], P=cfg["max_position_embeddings"])
    if cfg["model_type"] == "gpt2":
        H, L, nh = cfg["n_embd"], cfg["n_layer"], cfg["n_head"]
        return dict(H=H, L=L, nh=nh, nkv=nh, dh=H // nh, V=cfg["vocab_size"], P=cfg["n_positions"])
    nh, nkv, dh = dec.llama_dims(cfg)
    return dict(H=cfg["hidden_size"], L=cfg["num_hidden_layers"], nh=nh, nkv=nkv, dh=dh, V=cfg["vocab_size"],
                P=cfg["max_position_embeddings"])


def word_embeddings(cfg, p):
    if cfg["model_type"] == "bert":
        return p["embeddings.word_embeddings.weight"]
    return p["transformer.wte.weight"] if cfg["model_type"] == "gpt2" else p["model.embed_tokens.weight"]


def bert_forward(cfg, p, embeds, token_types, mask, pos, prefix=None):
    """BertModel on inputs_embeds [B,S,H] -> last_hidden_state [B,S,H]. mask [B, n+S] covers the prefix
    columns when a prefix [(k, v)] per layer [B,nh,n,dh] is given (bidirectional attention)."""
    d = dims(cfg)
    H, nh, dh = d["H"], d["nh"], d["dh"]
    eps = cfg["layer_norm_eps"]
    B, S, _ = embeds.shape
    x = embeds + p["embeddings.position_embeddings.weight"][pos] + p["embeddings.token_type_embeddings.weight"][token_types]
    x = dec.layer_norm(x, p["embeddings.LayerNorm.weight"], p["embeddings.LayerNorm.bias"], eps)
    bias = (1.0 - mask[:, None, None, :].float()) * NEG       # BertModel's extended mask [B,1,1,keys]
    for i in range(d["L"]):
        pre = f"encoder.layer.{i}."
        q = dec.linear(x, p, pre + "attention.self.query").view(B, S, nh, dh).transpose(1, 2)
        k = dec.linear(x, p, pre + "attention.self.key").view(B, S, nh, dh).transpose(1, 2)
        v = dec.linear(x, p, pre + "attention.self.value").view(B, S, nh, dh).transpose(1, 2)
        if prefix is not None:
            k = torch.cat([prefix[i][0], k], 2)
            v = torch.cat([prefix[i][1], v], 2)
        a = (torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(dh) + bias, -1) @ v).transpose(1, 2).reshape(B, S, H)
        x = dec.layer_norm(dec.linear(a, p, pre + "attention.output.dense") + x,
                           p[pre + "attention.output.LayerNorm.weight"], p[pre + "attention.output.LayerNorm.bias"], eps)
        m = dec.act(cfg["hidden_act"], dec.linear(x, p, pre + "intermediate.dense"))
        x = dec.layer_norm(dec.linear(m, p, pre + "output.dense") + x,
                           p[pre + "output.LayerNorm.weight"], p[pre + "output.LayerNorm.bias"], eps)
    return x


def bert_classify(p, head, h):
    """BertForSequenceClassification's head (eval): classifier(tanh(pooler.dense(h[:, 0])))."""
    pooled = torch.tanh(dec.linear(h[:, 0], p, "pooler.dense"))
    return pooled @ head["classifier.weight"].T + head["classifier.bias"]


def bert_prompt_logits(cfg, p, head, prompts, ids, tt, mask):
    """PROMPT_TUNING / P_TUNING on BERT: (last_hidden_state [B, n+T, H], logits [B, C])."""
    B, T = ids.shape
    n = prompts.shape[0]
    embeds = torch.cat([prompts[None].expand(B, -1, -1), word_embeddings(cfg, p)[ids]], 1)
    pos = torch.arange(n + T)[None].expand(B, -1)
    tt2 = torch.cat([torch.zeros(B, n, dtype=torch.long), tt], 1)
    m2 = torch.cat([torch.ones(B, n, dtype=mask.dtype), mask], 1)
    h = bert_forward(cfg, p, embeds, tt2, m2, pos)
    return h, bert_classify(p, head, h)


def bert_prefix_logits(cfg, p, head, prompts, ids, tt, mask):
    """PREFIX_TUNING on BERT: (last_hidden_state [B, T, H], logits [B, C])."""
    d = dims(cfg)
    B, T = ids.shape
    n = prompts.shape[0]
    pkv = prompts[None].expand(B, -1, -1).reshape(B, n, 2 * d["L"], d["nkv"], d["dh"]).permute(2, 0, 3, 1, 4).split(2)
    prefix = [(t[0], t[1]) for t in pkv]
    pos = torch.arange(n, n + T)[None].expand(B, -1)
    m2 = torch.cat([torch.ones(B, n, dtype=mask.dtype), mask], 1)
    h = bert_forward(cfg, p, word_embeddings(cfg, p)[ids], tt, m2, pos, prefix)
    return h, bert_classify(p, head, h)


def bert_inputs(g, d):
    """Two rows of 6 tokens, the second right-padded by 2 (pad id 0, mask 0), sentence-B token types."""
    ids = torch.randint(1, d["V"], (2, 6), generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    ids = ids * mask
    tt = torch.tensor([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 0, 0]])
    return ids, tt, mask


def bias(T, n_prefix, mask=None):
    """[1 or B,1,T,n_prefix+T]: every query sees the prefix and the keys up to itself; with a padding mask
    [B, n_prefix+T] (1 = attend), keys where it is 0 are hidden as well (HF's additive mask)."""
    allowed = torch.cat([torch.ones(T, n_prefix, dtype=torch.bool), torch.tril(torch.ones(T, T, dtype=torch.bool))], 1)
    allowed = allowed[None, None]
    if mask is not None:
        allowed = allowed & (mask[:, None, None, :] != 0)
    return torch.where(allowed, torch.zeros(()), torch.full((), NEG))


def forward(cfg, p, embeds, pos, prefix=None, mask=None, hidden=False):
    """Logits [B,T,V] (or, with hidden, the final hidden states [B,T,H]) from inputs_embeds [B,T,H],
    positions [B,T], optional prefix [(k, v)] per layer [B,kv,n,dh] and padding mask [B, n+T]."""
    d = dims(cfg)
    B, T, H = embeds.shape
    n = 0 if prefix is None else prefix[0][0].shape[2]
    mb = bias(T, n, mask)
    if cfg["model_type"] == "gpt2":
        eps = cfg.get("layer_norm_epsilon", 1e-5)
        x = embeds + p["transformer.wpe.weight"][pos]
        for i in range(d["L"]):
            pre = f"transformer.h.{i}."
            h = dec.layer_norm(x, p[pre + "ln_1.weight"], p[pre + "ln_1.bias"], eps)
            q, k, v = (h @ p[pre + "attn.c_attn.weight"] + p[pre + "attn.c_attn.bias"]).split(H, dim=-1)
            q, k, v = (t.view(B, T, d["nh"], d["dh"]).permute(0, 2, 1, 3) for t in (q, k, v))
            if prefix is not None:
                k = torch.cat([prefix[i][0], k], 2)
                v = torch.cat([prefix[i][1], v], 2)
            a = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(d["dh"]) + mb, -1) @ v
            x = x + a.permute(0, 2, 1, 3).reshape(B, T, H) @ p[pre + "attn.c_proj.weight"] + p[pre + "attn.c_proj.bias"]
            h = dec.layer_norm(x, p[pre + "ln_2.weight"], p[pre + "ln_2.bias"], eps)
            m = dec.act(cfg.get("activation_function", "gelu_new"), h @ p[pre + "mlp.c_fc.weight"] + p[pre + "mlp.c_fc.bias"])
            x = x + m @ p[pre + "mlp.c_proj.weight"] + p[pre + "mlp.c_proj.bias"]
        x = dec.layer_norm(x, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], eps)
        return x if hidden else x @ p.get("lm_head.weight", p["transformer.wte.weight"]).T
    nh, nkv, dh = d["nh"], d["nkv"], d["dh"]
    eps = cfg.get("rms_norm_eps", 1e-6)
    cos, sin = dec.rope_cos_sin(pos, dh, cfg.get("rope_theta", 10000.0))
    cos, sin = cos[:, None], sin[:, None]
    x = embeds
    rep = nh // nkv
    for i in range(d["L"]):
        pre = f"model.layers.{i}."
        h = dec.rms_norm(x, p[pre + "input_layernorm.weight"], eps)
        q = dec.linear(h, p, pre + "self_attn.q_proj").view(B, T, nh, dh).transpose(1, 2)
        k = dec.linear(h, p, pre + "self_attn.k_proj").view(B, T, nkv, dh).transpose(1, 2)
        v = dec.linear(h, p, pre + "self_attn.v_proj").view(B, T, nkv, dh).transpose(1, 2)
        q = q * cos + dec.rotate_half(q) * sin
        k = k * cos + dec.rotate_half(k) * sin
        if prefix is not None:  # the prefix is past_key_values: already "rotated", not rotated again
            k = torch.cat([prefix[i][0], k], 2)
            v = torch.cat([prefix[i][1], v], 2)
        S = k.shape[2]
        k = k[:, :, None].expand(B, nkv, rep, S, dh).reshape(B, nh, S, dh)
        v = v[:, :, None].expand(B, nkv, rep, S, dh).reshape(B, nh, S, dh)
        a = torch.softmax((q @ k.transpose(-1, -2)) * dh ** -0.5 + mb, -1) @ v
        x = x + dec.linear(a.transpose(1, 2).reshape(B, T, nh * dh), p, pre + "self_attn.o_proj")
        h = dec.rms_norm(x, p[pre + "post_attention_layernorm.weight"], eps)
        x = x + dec.linear(dec.act(cfg.get("hidden_act", "silu"), dec.linear(h, p, pre + "mlp.gate_proj"))
                           * dec.linear(h, p, pre + "mlp.up_proj"), p, pre + "mlp.down_proj")
    x = dec.rms_norm(x, p["model.norm.weight"], eps)
    return x if hidden else x @ p.get("lm_head.weight", p["model.embed_tokens.weight"]).T


def prompt_logits(cfg, p, prompts, ids):
    """PROMPT_TUNING / P_TUNING: virtual tokens in front, positions 0..n+T-1 -> logits [B, n+T, V]."""
    B, T = ids.shape
    n = prompts.shape[0]
    embeds = torch.cat([prompts[None].expand(B, -1, -1), word_embeddings(cfg, p)[ids]], 1)
    pos = torch.arange(n + T)[None].expand(B, -1)
    return forward(cfg, p, embeds, pos)


def prefix_logits(cfg, p, prompts, ids):
    """PREFIX_TUNING: PEFT's view + permute + split, real tokens at n..n+T-1 -> logits [B, T, V]."""
    d = dims(cfg)
    B, T = ids.shape
    n = prompts.shape[0]
    pkv = prompts[None].expand(B, -1, -1).reshape(B, n, 2 * d["L"], d["nkv"], d["dh"]).permute(2, 0, 3, 1, 4).split(2)
    prefix = [(t[0], t[1]) for t in pkv]
    pos = torch.arange(n, n + T)[None].expand(B, -1)
    return forward(cfg, p, word_embeddings(cfg, p)[ids], pos, prefix)


# ---- decoder sequence classification (GPT2ForSequenceClassification, LlamaForSequenceClassification) ----
SEQCLS = os.path.join(ROOT, "peft-core", "src", "test", "resources", "fixtures", "decoders-seqcls")
SEQCLS_PAD = 3
SEQCLS_LABELS = ["neg", "neutral", "pos"]


def last_non_pad(ids, pad):
    """transformers: the rightmost position whose id is not pad_token_id, argmax(arange(T) * (ids != pad))."""
    return (torch.arange(ids.shape[1])[None] * (ids != pad).long()).argmax(-1)


def seqcls_logits(cfg, p, score, ids, mask, prompts=None, method=None):
    """[B, C]: score of the last non-pad token's final hidden state. Prompt tuning / P-tuning put n virtual
    tokens in front (the index shifts by n; positions 0..n+T-1, mask ones in front); prefix tuning passes the
    prefix as past_key_values (positions n..n+T-1, mask ones in front, no shift)."""
    d = dims(cfg)
    B, T = ids.shape
    last = last_non_pad(ids, SEQCLS_PAD)
    words = word_embeddings(cfg, p)[ids]
    if prompts is None:
        h = forward(cfg, p, words, torch.arange(T)[None].expand(B, -1), mask=mask, hidden=True)
        shift = 0
    else:
        n = prompts.shape[0]
        m2 = torch.cat([torch.ones(B, n, dtype=mask.dtype), mask], 1)
        if method == "PREFIX_TUNING":
            pkv = prompts[None].expand(B, -1, -1).reshape(B, n, 2 * d["L"], d["nkv"], d["dh"]).permute(2, 0, 3, 1, 4).split(2)
            h = forward(cfg, p, words, torch.arange(n, n + T)[None].expand(B, -1), [(t[0], t[1]) for t in pkv], mask=m2,
                        hidden=True)
            shift = 0
        else:
            embeds = torch.cat([prompts[None].expand(B, -1, -1), words], 1)
            h = forward(cfg, p, embeds, torch.arange(n + T)[None].expand(B, -1), mask=m2, hidden=True)
            shift = n
    pooled = h[torch.arange(B), shift + last]
    return pooled @ score.T


def seqcls_inputs(g, d):
    """Row 0 unpadded, row 1 holding the pad id inside (a real token: the mask is 1 there) and right-padded by 2."""
    ids = torch.randint(SEQCLS_PAD + 1, d["V"], (2, 7), generator=g)
    ids[1, 2] = SEQCLS_PAD
    ids[1, 5:] = SEQCLS_PAD
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    return ids, mask


def seqcls_config(cfg):
    c = dict(cfg)
    c["architectures"] = [{"gpt2": "GPT2ForSequenceClassification", "llama": "LlamaForSequenceClassification",
                           "mistral": "MistralForSequenceClassification", "qwen2": "Qwen2ForSequenceClassification"}[
        cfg["model_type"]]]
    c["id2label"] = {str(i): l for i, l in enumerate(SEQCLS_LABELS)}
    c["label2id"] = {l: i for i, l in enumerate(SEQCLS_LABELS)}
    c["pad_token_id"] = SEQCLS_PAD
    return c


def build_seqcls(model, g):
    """A ...ForSequenceClassification checkpoint of a decoder fixture (its keys, no lm_head, score.weight) + logits."""
    cfg, p = load_model(model)
    d = dims(cfg)
    score = torch.randn(len(SEQCLS_LABELS), d["H"], generator=g) * 0.5
    weights = {k: v for k, v in p.items() if not k.startswith("lm_head.")}
    weights["score.weight"] = score
    ids, mask = seqcls_inputs(g, d)
    with torch.no_grad():
        logits = seqcls_logits(cfg, p, score, ids, mask)
    out = os.path.join(SEQCLS, model)
    os.makedirs(out, exist_ok=True)
    dec.write_json(os.path.join(out, "config.json"), seqcls_config(cfg))
    dec.write_safetensors(os.path.join(out, "model.safetensors"), {k: v.contiguous() for k, v in weights.items()}, {"format": "pt"})
    dec.write_safetensors(os.path.join(out, "reference.safetensors"), {"input_ids": ids, "attention_mask": mask,
                                                                       "logits": logits.contiguous()})
    print(f"decoders-seqcls/{model}: score {tuple(score.shape)}, logits {tuple(logits.shape)}")


def check_classifier(folder, model):
    """A classifier folder peft4j saved: config keys, decoder keys + score.weight (no lm_head), logits."""
    cfg, p = load_model(model)
    d = dims(cfg)
    errors = []
    with open(os.path.join(folder, "config.json")) as f:
        c = json.load(f)
    want = seqcls_config(cfg)
    for k in ["architectures", "model_type", "pad_token_id", "id2label", "label2id"]:
        if c.get(k) != want.get(k):
            errors.append(f"config {k} = {c.get(k)}, expected {want.get(k)}")
    st = {k: torch.tensor(np.array(v)) for k, v in dec.read_safetensors(os.path.join(folder, "model.safetensors")).items()}
    expect = sorted([k for k in p if not k.startswith("lm_head.")] + ["score.weight"])
    if sorted(st) != expect:
        errors.append(f"keys {sorted(set(st) ^ set(expect))} differ")
    elif tuple(st["score.weight"].shape) != (len(SEQCLS_LABELS), d["H"]):
        errors.append(f"score.weight {tuple(st['score.weight'].shape)}")
    else:
        ref = dec.read_safetensors(os.path.join(folder, "peft4j_logits.safetensors"))
        ids = torch.tensor(np.array(ref["input_ids"])).long()
        mask = torch.tensor(np.array(ref["attention_mask"])).long()
        with torch.no_grad():
            got = seqcls_logits(cfg, st, st["score.weight"], ids, mask)
        err = (got - torch.tensor(np.array(ref["logits"]))).abs().max().item()
        print(f"{folder}: max |logits difference| {err:.2e}")
        if err > 1e-4:
            errors.append(f"logits differ by {err}")
    for e in errors:
        print(f"{folder}: {e}")
    return 0 if not errors else 1


def base_config(cfg, peft_type, n, token_dim, heads):
    d = dims(cfg)
    return {"peft_type": peft_type, "task_type": "SEQ_CLS" if cfg["model_type"] == "bert" else "CAUSAL_LM", "inference_mode": True, "base_model_name_or_path": None,
            "revision": None, "num_virtual_tokens": n, "token_dim": token_dim, "num_transformer_submodules": 1,
            "num_attention_heads": heads, "num_layers": d["L"], "peft_version": "0.13.2", "auto_mapping": None}


def build(model, method, g, n=4, **kw):
    cfg, p = load_model(model)
    d = dims(cfg)
    H = d["H"]
    encoder = {}
    if method == "prompt":
        c = base_config(cfg, "PROMPT_TUNING", n, H, d["nh"])
        c.update({"prompt_tuning_init": "RANDOM", "prompt_tuning_init_text": None, "tokenizer_name_or_path": None,
                  "tokenizer_kwargs": None})
        prompts = torch.randn(n, H, generator=g)
    elif method.startswith("ptuning"):
        etype = kw["encoder"]
        h = kw["hidden"]
        c = base_config(cfg, "P_TUNING", n, H, d["nh"])
        c.update({"encoder_reparameterization_type": etype, "encoder_hidden_size": h,
                  "encoder_num_layers": kw.get("layers", 2), "encoder_dropout": 0.0})
        emb = torch.nn.Embedding(n, H)
        with torch.no_grad():
            emb.weight.copy_(torch.randn(n, H, generator=g))
        if etype == "LSTM":
            lstm = torch.nn.LSTM(H, h, num_layers=kw.get("layers", 2), dropout=0.0, bidirectional=True, batch_first=True)
            mlp = torch.nn.Sequential(torch.nn.Linear(2 * h, 2 * h), torch.nn.ReLU(), torch.nn.Linear(2 * h, H))
            mods = {"lstm_head": lstm, "mlp_head": mlp}
        else:
            mlp = torch.nn.Sequential(torch.nn.Linear(H, h), torch.nn.ReLU(), torch.nn.Linear(h, h), torch.nn.ReLU(),
                                      torch.nn.Linear(h, H))
            mods = {"mlp_head": mlp}
        with torch.no_grad():  # weights from the fixed generator, not torch's global RNG
            for m in mods.values():
                for t in m.parameters():
                    t.copy_(torch.randn(t.shape, generator=g) * 0.4)
            x = emb.weight[None]
            if etype == "LSTM":
                prompts = mlp(lstm(x)[0])[0]
            else:
                prompts = mlp(emb.weight)
        encoder["embedding.weight"] = emb.weight
        for name, m in mods.items():
            for k, t in m.state_dict().items():
                encoder[name + "." + k] = t
    else:
        token_dim = d["dh"] * d["nkv"]
        out = d["L"] * 2 * token_dim
        c = base_config(cfg, "PREFIX_TUNING", n, token_dim, d["nkv"])
        proj = kw.get("projection", False)
        h = kw.get("hidden", token_dim)
        c.update({"encoder_hidden_size": h, "prefix_projection": proj})
        if proj:
            emb = torch.randn(n, token_dim, generator=g)
            w0 = torch.randn(h, token_dim, generator=g) * 0.4
            b0 = torch.randn(h, generator=g) * 0.1
            w2 = torch.randn(out, h, generator=g) * 0.5
            b2 = torch.randn(out, generator=g) * 0.1
            prompts = torch.tanh(emb @ w0.T + b0) @ w2.T + b2
            encoder = {"embedding.weight": emb, "transform.0.weight": w0, "transform.0.bias": b0,
                       "transform.2.weight": w2, "transform.2.bias": b2}
        else:
            prompts = torch.randn(n, out, generator=g) * 0.7
    bert = cfg["model_type"] == "bert"
    seqcls = kw.get("seqcls", False)
    extra = {}
    head = {}
    if seqcls:
        c["task_type"] = "SEQ_CLS"
        c["modules_to_save"] = ["score"]
        head = {"score.weight": torch.randn(len(SEQCLS_LABELS), H, generator=g) * 0.5}
        ids, mask = seqcls_inputs(g, d)
        with torch.no_grad():
            logits = seqcls_logits(cfg, p, head["score.weight"], ids, mask, prompts, c["peft_type"])
        extra = {"attention_mask": mask}
    elif bert:
        ids, tt, mask = bert_inputs(g, d)
        head = {"classifier.weight": torch.randn(2, H, generator=g) * 0.5, "classifier.bias": torch.randn(2, generator=g) * 0.1}
        c["modules_to_save"] = ["classifier"]
        with torch.no_grad():
            fn = bert_prefix_logits if c["peft_type"] == "PREFIX_TUNING" else bert_prompt_logits
            hidden, logits = fn(cfg, p, head, prompts, ids, tt, mask)
        extra = {"token_type_ids": tt, "attention_mask": mask, "last_hidden_state": hidden.contiguous()}
    else:
        ids = torch.randint(0, d["V"], (2, 6), generator=g)
        with torch.no_grad():
            logits = (prefix_logits if c["peft_type"] == "PREFIX_TUNING" else prompt_logits)(cfg, p, prompts, ids)
    assert torch.isfinite(logits).all()
    name = f"{model}-seqcls-{method}" if seqcls else f"{model}-{method}"
    out_dir = os.path.join(OUT, name)
    os.makedirs(out_dir, exist_ok=True)
    dec.write_json(os.path.join(out_dir, "adapter_config.json"), c)
    tensors = {"prompt_embeddings": prompts.contiguous()}
    tensors.update({"base_model.model." + k: v.contiguous() for k, v in head.items()})
    dec.write_safetensors(os.path.join(out_dir, "adapter_model.safetensors"), tensors, {"format": "pt"})
    enc_file = os.path.join(out_dir, "peft4j_prompt_encoder.safetensors")
    if encoder:
        dec.write_safetensors(enc_file, {k: v.detach().contiguous() for k, v in encoder.items()}, {"format": "pt"})
    elif os.path.exists(enc_file):
        os.remove(enc_file)
    ref = {"input_ids": ids, "logits": logits.contiguous()}
    ref.update(extra)
    dec.write_safetensors(os.path.join(out_dir, "reference.safetensors"), ref)
    print(f"{name}: prompt_embeddings {tuple(prompts.shape)}, logits {tuple(logits.shape)}")


REQUIRED = {"PROMPT_TUNING": ["prompt_tuning_init"], "P_TUNING": ["encoder_reparameterization_type", "encoder_hidden_size",
            "encoder_num_layers", "encoder_dropout"], "PREFIX_TUNING": ["encoder_hidden_size", "prefix_projection"]}


def check(folder, model):
    cfg, p = load_model(model)
    d = dims(cfg)
    with open(os.path.join(folder, "adapter_config.json")) as f:
        c = json.load(f)
    t = c["peft_type"]
    errors = []
    for k in ["num_virtual_tokens", "token_dim", "num_transformer_submodules", "num_attention_heads", "num_layers",
              "task_type", "inference_mode"] + REQUIRED[t]:
        if k not in c:
            errors.append(f"missing key {k}")
    prefix = t == "PREFIX_TUNING"
    want_dim = d["dh"] * d["nkv"] if prefix else d["H"]
    want_heads = d["nkv"] if prefix else d["nh"]
    for k, v in [("token_dim", want_dim), ("num_attention_heads", want_heads), ("num_layers", d["L"]),
                 ("num_transformer_submodules", 1), ("inference_mode", True)]:
        if c.get(k) != v:
            errors.append(f"{k} = {c.get(k)}, expected {v}")
    st = dec.read_safetensors(os.path.join(folder, "adapter_model.safetensors"))
    bert = cfg["model_type"] == "bert"
    seqcls = not bert and c.get("task_type") == "SEQ_CLS"
    head_keys = (["base_model.model.classifier.bias", "base_model.model.classifier.weight"] if bert
                 else ["base_model.model.score.weight"] if seqcls else [])
    if sorted(st) != sorted(["prompt_embeddings"] + head_keys):
        errors.append(f"tensors {sorted(st)}, expected {sorted(['prompt_embeddings'] + head_keys)}")
    else:
        pe = torch.tensor(np.array(st["prompt_embeddings"]))
        n = c["num_virtual_tokens"]
        shape = (n, d["L"] * 2 * want_dim) if prefix else (n, d["H"])
        if tuple(pe.shape) != shape:
            errors.append(f"prompt_embeddings {tuple(pe.shape)}, expected {shape}")
        lf = os.path.join(folder, "peft4j_logits.safetensors")
        if not errors and os.path.exists(lf):
            ref = dec.read_safetensors(lf)
            ids = torch.tensor(np.array(ref["input_ids"])).long()
            with torch.no_grad():
                if seqcls:
                    mask = torch.tensor(np.array(ref["attention_mask"])).long()
                    score = torch.tensor(np.array(st["base_model.model.score.weight"]))
                    got = seqcls_logits(cfg, p, score, ids, mask, pe, t)
                elif bert:
                    head = {k[len("base_model.model."):]: torch.tensor(np.array(st[k])) for k in head_keys}
                    tt = torch.tensor(np.array(ref["token_type_ids"])).long()
                    mask = torch.tensor(np.array(ref["attention_mask"])).long()
                    got = (bert_prefix_logits if prefix else bert_prompt_logits)(cfg, p, head, pe, ids, tt, mask)[1]
                else:
                    got = (prefix_logits if prefix else prompt_logits)(cfg, p, pe, ids)
            err = (got - torch.tensor(np.array(ref["logits"]))).abs().max().item()
            print(f"{folder}: max |logits difference| {err:.2e}")
            if err > 1e-4:
                errors.append(f"logits differ by {err}")
    for e in errors:
        print(f"{folder}: {e}")
    return 0 if not errors else 1


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2], sys.argv[3]))
    if len(sys.argv) > 1 and sys.argv[1] == "--check-classifier":
        sys.exit(check_classifier(sys.argv[2], sys.argv[3]))
    g = torch.Generator().manual_seed(2024)
    build("gpt2", "prompt", g)
    build("gpt2", "ptuning-lstm", g, encoder="LSTM", hidden=8, layers=2)
    build("gpt2", "prefix", g)
    build("gpt2", "prefix-proj", g, projection=True, hidden=12)
    build("llama-gqa", "prompt", g)
    build("llama-gqa", "ptuning-mlp", g, encoder="MLP", hidden=24)
    build("llama-gqa", "prefix", g)
    build("llama-gqa", "prefix-proj", g, projection=True, hidden=20)
    build("bert", "prompt", g)
    build("bert", "ptuning-mlp", g, encoder="MLP", hidden=12)
    build("bert", "prefix", g)
    build("bert", "prefix-proj", g, projection=True, hidden=10)
    for model in ["gpt2", "llama-gqa", "llama-headdim"]:
        build_seqcls(model, g)
    build("gpt2", "prompt", g, seqcls=True)
    build("gpt2", "prefix", g, seqcls=True)
    build("llama-gqa", "ptuning-mlp", g, encoder="MLP", hidden=24, seqcls=True)
    build("llama-gqa", "prefix", g, seqcls=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Independent PyTorch reference for peft4j's T5 family (T5ForConditionalGeneration).

`transformers` is not installable here, so T5 is written out below in plain PyTorch from the
published model definition (modeling_t5.py of huggingface/transformers):

* shared token embedding `shared.weight` used by both stacks;
* T5LayerNorm: `weight * x * rsqrt(mean(x^2) + eps)` in fp32 (no mean subtraction, no bias);
* attention without 1/sqrt(d) scaling; q, k, v, o projections without bias, inner dim
  num_heads * d_kv;
* bucketed relative position bias (`relative_attention_bias`, [num_buckets, num_heads]) only in
  layer 0 of each stack, computed once and added to every layer's self-attention scores of that
  stack; bidirectional buckets in the encoder, unidirectional in the decoder
  (`_relative_position_bucket`: exact buckets below num_buckets/2, log-spaced up to
  max_distance); the decoder's query positions count from the cache length;
* decoder layers: self-attention (causal), cross-attention `EncDecAttention` over the encoder
  output (no position bias, the encoder padding mask), feed-forward;
* feed-forward `DenseReluDense`: `wo(act(wi(x)))` (feed_forward_proj "relu") or
  `wo(act(wi_0(x)) * wi_1(x))` ("gated-gelu": act = gelu_new, the tanh approximation);
* pre-norm residuals: `x = x + sublayer(layer_norm(x))`; final_layer_norm per stack;
* LM head: with tie_word_embeddings, `logits = (h * d_model**-0.5) @ shared.weight.T`; untied
  (v1.1, mT5), `logits = lm_head(h)` without rescaling;
* labels: decoder_input_ids = shift_right(labels) with decoder_start_token_id, -100 -> pad.

For each config it writes into `peft-core/src/test/resources/fixtures/t5/<name>/`:
  config.json, model.safetensors (HF key names, tied duplicates not written)
  reference.safetensors:
     input_ids [B,S] I64, attention_mask [B,S] I64 (right padded),
     decoder_input_ids [B,T] I64, decoder_attention_mask [B,T] I64 (right padded),
     logits [B,T,V] F32, encoder_last_hidden_state [B,S,d] F32,
     loss_weights [B,T,V] F32, grad.<name> F32: gradients of
         loss = sum(logits * loss_weights * decoder_attention_mask[..., None])
     buckets.bidirectional / buckets.unidirectional [Q,K] I64: bucket of key j for query i
     gen.input_ids [B,S] I64, gen.attention_mask [B,S] I64,
     gen.greedy [B,N] I64: greedy decoding (recompute everything each step), starting from
         decoder_start_token_id, N tokens (no eos stop, so every row has N)
     gen.beam [B,N'] I64 (padded with pad_token_id), gen.beam_scores [B] F32: beam search as
         HF's BeamSearchScorer (num_beams, length_penalty, early_stopping=False, eos stops a hypothesis)
  reference.json: metadata

Run with Debian's torch: `/usr/bin/python3 scripts/reference/make_t5_fixtures.py`.
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_decoder_fixtures import write_safetensors, write_json, gelu_new, FIXTURES  # noqa: E402

torch.set_default_dtype(torch.float32)
torch.set_num_threads(1)
NEG = torch.finfo(torch.float32).min


# --------------------------------------------------------------------------------------------
# T5
# --------------------------------------------------------------------------------------------
def relative_position_bucket(relative_position, bidirectional, num_buckets, max_distance):
    relative_buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    if_large = max_exact + (
        torch.log(relative_position.float() / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).to(torch.long)
    if_large = torch.min(if_large, torch.full_like(if_large, num_buckets - 1))
    relative_buckets += torch.where(is_small, relative_position, if_large)
    return relative_buckets


def bucket_table(q_len, k_len, bidirectional, cfg, q_offset=0):
    ctx = torch.arange(q_offset, q_offset + q_len, dtype=torch.long)[:, None]
    mem = torch.arange(k_len, dtype=torch.long)[None, :]
    return relative_position_bucket(mem - ctx, bidirectional, cfg["relative_attention_num_buckets"],
                                    cfg["relative_attention_max_distance"])


def compute_bias(table, q_len, k_len, bidirectional, cfg, q_offset=0):
    b = bucket_table(q_len, k_len, bidirectional, cfg, q_offset)
    return table[b].permute(2, 0, 1).unsqueeze(0)  # [1, H, q, k]


def t5_norm(x, w, eps):
    var = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def heads(x, n, d):
    B, T, _ = x.shape
    return x.view(B, T, n, d).transpose(1, 2)


def attention(p, pre, cfg, x, kv, bias, extra_mask, prefix=None):
    """scores = q k^T + bias + mask (no scaling), softmax, @ v, o. prefix = (k, v) [B, H, P, d_kv]
    prepended to the keys/values (prefix tuning)."""
    n, d = cfg["num_heads"], cfg["d_kv"]
    q = heads(x @ p[pre + "q.weight"].T, n, d)
    k = heads(kv @ p[pre + "k.weight"].T, n, d)
    v = heads(kv @ p[pre + "v.weight"].T, n, d)
    if prefix is not None:
        k = torch.cat([prefix[0], k], 2)
        v = torch.cat([prefix[1], v], 2)
    scores = q @ k.transpose(-1, -2)
    if bias is not None:
        scores = scores + bias
    scores = scores + extra_mask
    w = torch.softmax(scores.float(), dim=-1)
    ctx = (w @ v).transpose(1, 2).reshape(x.shape[0], x.shape[1], n * d)
    return ctx @ p[pre + "o.weight"].T


def ff(p, pre, cfg, x):
    if cfg["feed_forward_proj"].startswith("gated-"):
        h = gelu_new(x @ p[pre + "wi_0.weight"].T) * (x @ p[pre + "wi_1.weight"].T)
    else:
        h = torch.relu(x @ p[pre + "wi.weight"].T)
    return h @ p[pre + "wo.weight"].T


def padding_bias(mask):
    return torch.where(mask[:, None, None, :] == 1, torch.zeros(()), torch.full((), NEG))


def encode(p, cfg, ids, mask, virtual=None):
    """virtual [n, d_model]: prompt tuning's virtual tokens in front of the input (mask ones)."""
    eps = cfg["layer_norm_epsilon"]
    x = p["shared.weight"][ids]
    if virtual is not None:
        x = torch.cat([virtual[None].expand(ids.shape[0], -1, -1), x], 1)
        mask = torch.cat([torch.ones(ids.shape[0], virtual.shape[0], dtype=torch.long), mask], 1)
        ids = torch.zeros(mask.shape, dtype=torch.long)
    S = ids.shape[1]
    bias = compute_bias(p["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"], S, S, True, cfg)
    pad = padding_bias(mask)
    for i in range(cfg["num_layers"]):
        pre = f"encoder.block.{i}."
        x = x + attention(p, pre + "layer.0.SelfAttention.", cfg, t5_norm(x, p[pre + "layer.0.layer_norm.weight"], eps),
                          t5_norm(x, p[pre + "layer.0.layer_norm.weight"], eps), bias, pad)
        x = x + ff(p, pre + "layer.1.DenseReluDense.", cfg, t5_norm(x, p[pre + "layer.1.layer_norm.weight"], eps))
    return t5_norm(x, p["encoder.final_layer_norm.weight"], eps)


def decode(p, cfg, dec_ids, dec_mask, enc, enc_mask, prefixes=None):
    """prefixes: per decoder layer (self_k, self_v, cross_k, cross_v) [B, H, P, d_kv] (prefix
    tuning as PEFT passes past_key_values): the self-attention prefix counts as P earlier positions
    (queries at P.., keys 0..P+T-1 for the position bias, always visible); the cross-attention
    prefix is prepended to the encoder's keys/values, always visible."""
    eps = cfg["layer_norm_epsilon"]
    x = p["shared.weight"][dec_ids]
    B, T = dec_ids.shape
    P = 0 if prefixes is None else prefixes[0][0].shape[2]
    bias = compute_bias(p["decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"], T, P + T, False, cfg,
                        q_offset=P)
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    allowed = causal[None, None] & (dec_mask[:, None, None, :] == 1)
    allowed = torch.cat([torch.ones(B, 1, T, P, dtype=torch.bool), allowed.expand(B, 1, T, T)], 3)
    self_mask = torch.where(allowed, torch.zeros(()), torch.full((), NEG))
    cross_mask = padding_bias(torch.cat([torch.ones(B, P, dtype=torch.long), enc_mask], 1))
    for i in range(cfg["num_decoder_layers"]):
        pre = f"decoder.block.{i}."
        sp = None if prefixes is None else prefixes[i][:2]
        cp = None if prefixes is None else prefixes[i][2:]
        h = t5_norm(x, p[pre + "layer.0.layer_norm.weight"], eps)
        x = x + attention(p, pre + "layer.0.SelfAttention.", cfg, h, h, bias, self_mask, sp)
        h = t5_norm(x, p[pre + "layer.1.layer_norm.weight"], eps)
        x = x + attention(p, pre + "layer.1.EncDecAttention.", cfg, h, enc, None, cross_mask, cp)
        x = x + ff(p, pre + "layer.2.DenseReluDense.", cfg, t5_norm(x, p[pre + "layer.2.layer_norm.weight"], eps))
    x = t5_norm(x, p["decoder.final_layer_norm.weight"], eps)
    if cfg["tie_word_embeddings"]:
        return (x * cfg["d_model"] ** -0.5) @ p["shared.weight"].T
    return x @ p["lm_head.weight"].T


def forward(p, cfg, ids, mask, dec_ids, dec_mask):
    enc = encode(p, cfg, ids, mask)
    return decode(p, cfg, dec_ids, dec_mask, enc, mask), enc


def init(cfg, g, eos_boost=1.0):
    """HF T5PreTrainedModel._init_weights with initializer_factor f."""
    f = cfg["initializer_factor"]
    d, dkv, n, dff, V = cfg["d_model"], cfg["d_kv"], cfg["num_heads"], cfg["d_ff"], cfg["vocab_size"]
    inner = n * dkv

    def normal(shape, std):
        return torch.randn(shape, generator=g) * std

    p = {"shared.weight": normal((V, d), f * 1.0)}
    for stack, layers in (("encoder", cfg["num_layers"]), ("decoder", cfg["num_decoder_layers"])):
        for i in range(layers):
            pre = f"{stack}.block.{i}."
            atts = ["layer.0.SelfAttention."] + (["layer.1.EncDecAttention."] if stack == "decoder" else [])
            for a in atts:
                p[pre + a + "q.weight"] = normal((inner, d), f * (d * dkv) ** -0.5)
                p[pre + a + "k.weight"] = normal((inner, d), f * d ** -0.5)
                p[pre + a + "v.weight"] = normal((inner, d), f * d ** -0.5)
                p[pre + a + "o.weight"] = normal((d, inner), f * (n * dkv) ** -0.5)
            if i == 0:
                p[pre + "layer.0.SelfAttention.relative_attention_bias.weight"] = normal(
                    (cfg["relative_attention_num_buckets"], n), f * d ** -0.5)
            ffl = "layer.2." if stack == "decoder" else "layer.1."
            if cfg["feed_forward_proj"].startswith("gated-"):
                p[pre + ffl + "DenseReluDense.wi_0.weight"] = normal((dff, d), f * d ** -0.5)
                p[pre + ffl + "DenseReluDense.wi_1.weight"] = normal((dff, d), f * d ** -0.5)
            else:
                p[pre + ffl + "DenseReluDense.wi.weight"] = normal((dff, d), f * d ** -0.5)
            p[pre + ffl + "DenseReluDense.wo.weight"] = normal((d, dff), f * dff ** -0.5)
            norms = ["layer.0.", "layer.1."] + (["layer.2."] if stack == "decoder" else [])
            for nl in norms:
                # random norm weights (HF inits ones) so the tests see them
                p[pre + nl + "layer_norm.weight"] = 1.0 + 0.1 * torch.randn((d,), generator=g)
        p[f"{stack}.final_layer_norm.weight"] = 1.0 + 0.1 * torch.randn((d,), generator=g)
    if not cfg["tie_word_embeddings"]:
        p["lm_head.weight"] = normal((V, d), f * d ** -0.5 * 4)
    # make eos likely enough that beam search finishes hypotheses at different lengths
    head = "shared.weight" if cfg["tie_word_embeddings"] else "lm_head.weight"
    p[head][cfg["eos_token_id"]] *= eos_boost
    return p


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------
def greedy(p, cfg, ids, mask, n_new):
    enc = encode(p, cfg, ids, mask)
    B = ids.shape[0]
    dec = torch.full((B, 1), cfg["decoder_start_token_id"], dtype=torch.long)
    gap = float("inf")
    for _ in range(n_new):
        logits = decode(p, cfg, dec, torch.ones_like(dec), enc, mask)[:, -1]
        top2 = torch.topk(logits, 2, dim=-1).values
        gap = min(gap, float((top2[:, 0] - top2[:, 1]).min()))
        dec = torch.cat([dec, logits.argmax(-1)[:, None]], 1)
    return dec[:, 1:], gap


def beam_search(logits_fn, init, B, num_beams, max_new, length_penalty, eos, pad):
    """HF generate(num_beams=k, do_sample=False, early_stopping=False) with BeamSearchScorer.

    logits_fn(seqs [B*k, L]) gives the next-token logits [B*k, V] of every beam; init [B, L0] is
    the decoder prompt (T5: the start token; a decoder-only model: its prompt), expanded to k
    beams per row. Scores are cumulative log-softmax; each step takes the top 2k (beam, token)
    candidates of all beams of a row; a candidate ending in eos joins the finished hypotheses
    (score sum_logprobs / generated_len ** length_penalty, generated_len counting the eos and not
    the prompt) only if it ranks among the first k of the step; the first k non-eos candidates
    become the new beams. A row is done when it has k hypotheses and the best candidate score of
    the step divided by the current generated length ** length_penalty cannot beat the worst kept
    one. At max length the live beams of unfinished rows are added (generated_len = their
    length). Returns the best hypothesis of each row (generated tokens only, eos included),
    padded with pad."""
    k = num_beams
    seqs = init.repeat_interleave(k, 0)
    L0 = init.shape[1]
    beam_scores = torch.zeros(B, k)
    beam_scores[:, 1:] = -1e9
    beam_scores = beam_scores.view(-1)
    hyps = [[] for _ in range(B)]  # (score, tokens) best first
    done = [False] * B

    def add(b, tokens, score):
        if len(hyps[b]) >= k and score <= hyps[b][-1][0]:
            return
        hyps[b].append((score, tokens))
        hyps[b].sort(key=lambda h: -h[0])
        del hyps[b][k:]

    for step in range(max_new):
        lp = torch.log_softmax(logits_fn(seqs), -1)
        V = lp.shape[-1]
        nxt = (lp + beam_scores[:, None]).view(B, k * V)
        top_s, top_i = torch.topk(nxt, 2 * k, dim=1, largest=True, sorted=True)
        new_scores = torch.zeros(B, k)
        new_tok = torch.full((B, k), pad, dtype=torch.long)
        new_src = torch.zeros(B, k, dtype=torch.long)
        gen_len = step + 1
        for b in range(B):
            if done[b]:
                new_src[b] = b * k
                continue
            j = 0
            for rank in range(2 * k):
                sc = float(top_s[b, rank])
                beam = int(top_i[b, rank]) // V
                tok = int(top_i[b, rank]) % V
                if tok == eos:
                    if rank >= k:
                        continue
                    add(b, seqs[b * k + beam, L0:].tolist() + [eos], sc / gen_len ** length_penalty)
                else:
                    new_scores[b, j] = sc
                    new_tok[b, j] = tok
                    new_src[b, j] = b * k + beam
                    j += 1
                if j == k:
                    break
            if len(hyps[b]) >= k and hyps[b][-1][0] >= float(top_s[b, 0]) / gen_len ** length_penalty:
                done[b] = True
        seqs = torch.cat([seqs[new_src.view(-1)], new_tok.view(-1, 1)], 1)
        beam_scores = new_scores.view(-1)
        if all(done):
            break
    for b in range(B):
        if not done[b]:
            for j in range(k):
                t = seqs[b * k + j, L0:].tolist()
                add(b, t, float(beam_scores[b * k + j]) / len(t) ** length_penalty)
    best = [hyps[b][0] for b in range(B)]
    n = max(len(t) for _, t in best)
    out = torch.full((B, n), pad, dtype=torch.long)
    for b, (_, t) in enumerate(best):
        out[b, :len(t)] = torch.tensor(t, dtype=torch.long)
    return out, torch.tensor([sc for sc, _ in best], dtype=torch.float32)


def t5_beam(p, cfg, ids, mask, num_beams, max_new, length_penalty):
    k = num_beams
    enc = encode(p, cfg, ids, mask).repeat_interleave(k, 0)
    emask = mask.repeat_interleave(k, 0)
    init = torch.full((ids.shape[0], 1), cfg["decoder_start_token_id"], dtype=torch.long)
    fn = lambda seqs: decode(p, cfg, seqs, torch.ones_like(seqs), enc, emask)[:, -1]
    return beam_search(fn, init, ids.shape[0], k, max_new, length_penalty, cfg["eos_token_id"], cfg["pad_token_id"])


def gpt2_beam_fixture():
    """Beam search on the committed GPT-2 decoder fixture (left-padded prompts, HF generate()'s
    positions), written next to it as beam.safetensors / beam.json."""
    from make_decoder_fixtures import read_safetensors, gpt2_forward, hf_positions
    import json
    d = os.path.join(FIXTURES, "decoders", "gpt2")
    cfg = json.load(open(os.path.join(d, "config.json")))
    p = {kk: torch.from_numpy(v.copy()) for kk, v in read_safetensors(os.path.join(d, "model.safetensors")).items()}
    ref = read_safetensors(os.path.join(d, "reference.safetensors"))
    ids = torch.from_numpy(ref["gen.prompt_ids"].copy())
    mask = torch.from_numpy(ref["gen.prompt_mask"].copy())
    k, n_new, lpen = 3, 6, 0.8
    eos = 61  # a token the model favours, so one row finishes early and one runs to max length
    P = ids.shape[1]
    emask = mask.repeat_interleave(k, 0)

    def fn(seqs):
        m = torch.cat([emask, torch.ones(seqs.shape[0], seqs.shape[1] - P, dtype=torch.long)], 1)
        logits, _ = gpt2_forward(p, cfg, seqs, m, hf_positions(m))
        return logits[:, -1]

    with torch.no_grad():
        out, scores = beam_search(fn, ids, ids.shape[0], k, n_new, lpen, eos, 0)
    write_safetensors(os.path.join(d, "beam.safetensors"), {"beam.output_ids": out, "beam.scores": scores})
    write_json(os.path.join(d, "beam.json"), {"num_beams": k, "max_new_tokens": n_new, "length_penalty": lpen,
                                              "eos_token_id": eos, "pad_token_id": 0, "early_stopping": False,
                                              "prompts": "gen.prompt_ids / gen.prompt_mask of reference.safetensors"})
    print(f"gpt2 beam: eos {eos}, {out.tolist()} scores {scores.tolist()}")


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------
def right_padded(g, vocab, lengths, T, low=2):
    ids = torch.zeros((len(lengths), T), dtype=torch.long)
    mask = torch.zeros((len(lengths), T), dtype=torch.long)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(low, vocab, (n,), generator=g)
        mask[b, :n] = 1
    return ids, mask


def build(name, cfg, seed, grad_names, beam, eos_boost):
    g = torch.Generator().manual_seed(seed)
    params = init(cfg, g, eos_boost)
    out_dir = os.path.join(FIXTURES, "t5", name)
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, "config.json"), cfg)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), params, {"format": "pt"})

    V = cfg["vocab_size"]
    ids, mask = right_padded(g, V, [7, 4, 6], 7)
    dec_ids, dec_mask = right_padded(g, V, [5, 3, 1], 5)
    dec_ids[:, 0] = cfg["decoder_start_token_id"]
    leaf = {kk: v.clone().requires_grad_(True) for kk, v in params.items()}
    logits, enc = forward(leaf, cfg, ids, mask, dec_ids, dec_mask)
    w = torch.randn(logits.shape, generator=g)
    loss = (logits * w * dec_mask[..., None].float()).sum()
    loss.backward()
    # self-check: each row alone (unpadded) gives the same logits on its real decoder tokens
    with torch.no_grad():
        for b in range(ids.shape[0]):
            e = ids[b][mask[b] == 1][None]
            d = dec_ids[b][dec_mask[b] == 1][None]
            solo, _ = forward(params, cfg, e, torch.ones_like(e), d, torch.ones_like(d))
            err = (solo[0] - logits.detach()[b][dec_mask[b] == 1]).abs().max().item()
            assert err < 1e-4, f"{name}: row {b} padded vs alone differ by {err}"

    ref = {"input_ids": ids, "attention_mask": mask, "decoder_input_ids": dec_ids,
           "decoder_attention_mask": dec_mask, "logits": logits.detach(),
           "encoder_last_hidden_state": enc.detach(), "loss_weights": w,
           "buckets.bidirectional": bucket_table(40, 300, True, cfg),
           "buckets.unidirectional": bucket_table(40, 300, False, cfg)}
    for gname in grad_names:
        ref["grad." + gname] = leaf[gname].grad
    with torch.no_grad():
        gids, gmask = right_padded(g, V, [6, 3], 6)
        n_new = 6
        gre, gap = greedy(params, cfg, gids, gmask, n_new)
        if gap < 1e-3:
            raise SystemExit(f"{name}: greedy gap {gap:.2e} too small; change the seed")
        bm, bs = t5_beam(params, cfg, gids, gmask, beam["num_beams"], beam["max_new_tokens"], beam["length_penalty"])
    ref.update({"gen.input_ids": gids, "gen.attention_mask": gmask, "gen.greedy": gre,
                "gen.beam": bm, "gen.beam_scores": bs})
    write_safetensors(os.path.join(out_dir, "reference.safetensors"), ref)
    write_json(os.path.join(out_dir, "reference.json"), {
        "loss": "sum(logits * loss_weights * decoder_attention_mask[..., None])",
        "gradients": grad_names,
        "greedy": {"max_new_tokens": n_new, "eos_stops": False, "min_top1_top2_gap": gap},
        "beam": dict(beam, early_stopping=False),
        "buckets": "bucket of key j (0..299) for query i (0..39), relative position j - i",
        "torch_version": torch.__version__,
        "seed": seed,
    })
    print(f"{name}: {sum(v.numel() for v in params.values())} params, logits {tuple(logits.shape)}, "
          f"greedy {gre.tolist()} gap {gap:.4f}, beam {bm.tolist()} scores {bs.tolist()}")
    return params


def lora_fixture(name, params, cfg, seed):
    """A PEFT-layout LoRA folder (task SEQ_2_SEQ_LM, PEFT's default T5 targets q and v, in every
    self- and cross-attention of both stacks) with random A and non-zero B, and the logits of the
    fixture's batch with the adapted weights W + (lora_alpha / r) B A."""
    g = torch.Generator().manual_seed(seed)
    r, alpha = 2, 6
    ref_dir = os.path.join(FIXTURES, "t5", name)
    out = os.path.join(ref_dir, "lora")
    os.makedirs(out, exist_ok=True)
    adapted = dict(params)
    tensors = {}
    for key in sorted(params):
        if key.endswith(".q.weight") or key.endswith(".v.weight"):
            mod = key[: -len(".weight")]
            W = params[key]
            A = torch.randn((r, W.shape[1]), generator=g) * 0.3
            B = torch.randn((W.shape[0], r), generator=g) * 0.3
            tensors[f"base_model.model.{mod}.lora_A.weight"] = A
            tensors[f"base_model.model.{mod}.lora_B.weight"] = B
            adapted[key] = W + (alpha / r) * (B @ A)
    write_safetensors(os.path.join(out, "adapter_model.safetensors"), tensors, {"format": "pt"})
    write_json(os.path.join(out, "adapter_config.json"), {
        "peft_type": "LORA", "task_type": "SEQ_2_SEQ_LM", "r": r, "lora_alpha": alpha, "lora_dropout": 0.0,
        "target_modules": ["q", "v"], "bias": "none", "fan_in_fan_out": False, "inference_mode": True,
        "init_lora_weights": True, "modules_to_save": None, "base_model_name_or_path": None,
        "use_rslora": False, "use_dora": False, "rank_pattern": {}, "alpha_pattern": {}})
    return adapted


def write_adapted_logits(name, file, adapted, cfg):
    from make_decoder_fixtures import read_safetensors
    ref = read_safetensors(os.path.join(FIXTURES, "t5", name, "reference.safetensors"))
    t = {kk: torch.from_numpy(v.copy()) for kk, v in ref.items()}
    with torch.no_grad():
        logits, _ = forward(adapted, cfg, t["input_ids"], t["attention_mask"], t["decoder_input_ids"],
                            t["decoder_attention_mask"])
    write_safetensors(file, {"logits": logits})


def peft_prefix_layout(prompt, B, cfg):
    """PEFT's get_prompt for PREFIX_TUNING with num_transformer_submodules = 2 (checked at
    peft_model.py): prompt_embeddings [P, num_layers * 2 * token_dim] is viewed as
    [B, P, 2L, H, token_dim / H], concatenated with itself along the 2L axis (4L entries), permuted
    to [4L, B, H, P, D] and split into chunks of 4: decoder layer i gets entries 4i..4i+3 of
    [k_0, v_0, k_1, v_1, ..., k_{L-1}, v_{L-1}, k_0, v_0, ...] as (self key, self value,
    cross key, cross value). T5's encoder gets no prefix (past_key_values feed the decoder only)."""
    L, H = cfg["num_layers"], cfg["num_heads"]
    P = prompt.shape[0]
    pkv = prompt[None].expand(B, -1, -1).reshape(B, P, 2 * L, H, -1)
    pkv = torch.cat([pkv, pkv], 2).permute(2, 0, 3, 1, 4)
    chunks = pkv.split(4)
    return [tuple(c[j] for j in range(4)) for c in chunks]


def prompt_fixtures(name, params, cfg, seed):
    """PEFT-layout PREFIX_TUNING and PROMPT_TUNING folders (task SEQ_2_SEQ_LM,
    num_transformer_submodules 2) and the logits of the fixture batch with each."""
    from make_decoder_fixtures import read_safetensors
    g = torch.Generator().manual_seed(seed)
    base = os.path.join(FIXTURES, "t5", name)
    ref = {kk: torch.from_numpy(v.copy()) for kk, v in read_safetensors(os.path.join(base, "reference.safetensors")).items()}
    ids, mask, dec, dmask = ref["input_ids"], ref["attention_mask"], ref["decoder_input_ids"], ref["decoder_attention_mask"]
    L, H, dkv, d = cfg["num_layers"], cfg["num_heads"], cfg["d_kv"], cfg["d_model"]
    assert cfg["num_decoder_layers"] == L and H * dkv == d
    P = 3
    prompt = torch.randn((P, L * 2 * H * dkv), generator=g) * 0.8
    out = os.path.join(base, "prefix")
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "adapter_model.safetensors"), {"prompt_embeddings": prompt}, {"format": "pt"})
    write_json(os.path.join(out, "adapter_config.json"), {
        "peft_type": "PREFIX_TUNING", "task_type": "SEQ_2_SEQ_LM", "num_virtual_tokens": P, "token_dim": H * dkv,
        "num_transformer_submodules": 2, "num_attention_heads": H, "num_layers": L, "prefix_projection": False,
        "encoder_hidden_size": H * dkv, "inference_mode": True, "base_model_name_or_path": None})
    with torch.no_grad():
        enc = encode(params, cfg, ids, mask)
        logits = decode(params, cfg, dec, dmask, enc, mask, peft_prefix_layout(prompt, ids.shape[0], cfg))
    write_safetensors(os.path.join(out, "expected.safetensors"), {"logits": logits})

    n = 2
    virt = torch.randn((2 * n, d), generator=g)
    out = os.path.join(base, "prompt")
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "adapter_model.safetensors"), {"prompt_embeddings": virt}, {"format": "pt"})
    write_json(os.path.join(out, "adapter_config.json"), {
        "peft_type": "PROMPT_TUNING", "task_type": "SEQ_2_SEQ_LM", "num_virtual_tokens": n, "token_dim": d,
        "num_transformer_submodules": 2, "num_attention_heads": H, "num_layers": L, "prompt_tuning_init": "RANDOM",
        "inference_mode": True, "base_model_name_or_path": None})
    with torch.no_grad():
        # PeftModelForSeq2SeqLM: the first num_virtual_tokens of the [2n, d] table go in front of the encoder input
        enc = encode(params, cfg, ids, mask, virt[:n])
        emask = torch.cat([torch.ones(ids.shape[0], n, dtype=torch.long), mask], 1)
        logits = decode(params, cfg, dec, dmask, enc, emask)
    write_safetensors(os.path.join(out, "expected.safetensors"), {"logits": logits})


def base_cfg(**kw):
    cfg = {
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "vocab_size": 40, "d_model": 16, "d_kv": 6, "d_ff": 24, "num_layers": 2, "num_decoder_layers": 3,
        "num_heads": 3, "relative_attention_num_buckets": 8, "relative_attention_max_distance": 20,
        "dropout_rate": 0.1, "layer_norm_epsilon": 1e-6, "initializer_factor": 1.0,
        "feed_forward_proj": "relu", "tie_word_embeddings": True, "is_encoder_decoder": True,
        "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0,
    }
    cfg.update(kw)
    return cfg


def main():
    v10 = base_cfg()
    p10 = build("t5-v1_0", v10, 1701, [
        "shared.weight", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "encoder.block.1.layer.0.SelfAttention.q.weight", "decoder.block.2.layer.1.EncDecAttention.k.weight",
        "decoder.block.1.layer.1.EncDecAttention.v.weight", "encoder.block.0.layer.1.DenseReluDense.wi.weight",
        "decoder.block.0.layer.2.DenseReluDense.wo.weight", "encoder.final_layer_norm.weight",
        "decoder.block.1.layer.0.layer_norm.weight"],
        {"num_beams": 3, "max_new_tokens": 7, "length_penalty": 1.0}, 3.0)
    adapted = lora_fixture("t5-v1_0", p10, v10, 1801)
    write_adapted_logits("t5-v1_0", os.path.join(FIXTURES, "t5", "t5-v1_0", "lora", "expected.safetensors"), adapted, v10)
    v11 = base_cfg(feed_forward_proj="gated-gelu", tie_word_embeddings=False, num_decoder_layers=2,
                   d_kv=4, num_heads=4, relative_attention_num_buckets=16, relative_attention_max_distance=32)
    p11 = build("t5-v1_1", v11, 1702, [
        "shared.weight", "lm_head.weight", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "encoder.block.0.layer.1.DenseReluDense.wi_0.weight", "decoder.block.1.layer.2.DenseReluDense.wi_1.weight",
        "decoder.block.0.layer.1.EncDecAttention.q.weight", "decoder.final_layer_norm.weight"],
        {"num_beams": 4, "max_new_tokens": 8, "length_penalty": 0.6}, 2.0)
    prompt_fixtures("t5-v1_1", p11, v11, 1802)
    gpt2_beam_fixture()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""PyTorch side of the peft4j comparison harness (benchmarks/README.md).

A plain eager-mode PyTorch BERT (no transformers, no peft: Debian's python3-torch only) that loads
the MiniLM weights peft4j exported with BertForSequenceClassification.save(dir) and trains the same
step as peft4j: batch 16 x 128 tokens, mean pooling, a 2-label classifier, cross-entropy, AdamW
(lr 5e-5, weight decay 0.01 on matrices only, as peft4j's AdamW), either full fine-tuning or LoRA
(r 8, alpha 16, on query/value; the classifier trained too, as PEFT's SEQ_CLS modules_to_save).

Run it through the harness (which sends "round K" commands on stdin and reads one JSON line per
command), or stand-alone:

    /usr/bin/python3 scripts/bench/torch_minilm.py --model DIR --batch DIR/batch.json --mode lora --steps 5

Debian's torch calls the system BLAS: install libopenblas0-pthread, or it runs ~30x slower.
"""
import argparse
import json
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def load_safetensors(path):
    """Reads a .safetensors file into a dict of torch tensors (the format is an 8-byte little-endian
    header length, a JSON header of {name: {dtype, shape, data_offsets}}, then raw little-endian data)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        arr = np.frombuffer(data[start:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.word_embeddings = nn.Embedding(c["vocab_size"], h, padding_idx=c.get("pad_token_id", 0))
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], h)
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], h)
        self.LayerNorm = nn.LayerNorm(h, eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])

    def forward(self, ids):
        t = ids.shape[1]
        pos = torch.arange(t, dtype=torch.long)
        e = self.word_embeddings(ids) + self.token_type_embeddings(torch.zeros_like(ids)) + self.position_embeddings(pos)
        return self.dropout(self.LayerNorm(e))


class SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.head_dim = h // self.heads
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.dropout = nn.Dropout(c["attention_probs_dropout_prob"])

    def split(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x, ext_mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + ext_mask
        probs = self.dropout(F.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.shape[0], ctx.shape[1], -1)


class Output(nn.Module):
    """LayerNorm(residual + dropout(dense(x))) (BertSelfOutput / BertOutput)."""

    def __init__(self, c, inp):
        super().__init__()
        self.dense = nn.Linear(inp, c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        setattr(self, "self", SelfAttention(c))
        self.output = Output(c, c["hidden_size"])

    def forward(self, x, ext_mask):
        return self.output(getattr(self, "self")(x, ext_mask), x)


class Intermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

    def forward(self, x):
        return F.gelu(self.dense(x))  # exact (erf) GELU, BERT's "gelu"


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = Intermediate(c)
        self.output = Output(c, c["intermediate_size"])

    def forward(self, x, ext_mask):
        a = self.attention(x, ext_mask)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])


class Bert(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)

    def forward(self, ids, mask):
        # Hugging Face's extended mask: 0 where attended, the dtype minimum where padded
        ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        h = self.embeddings(ids)
        for layer in self.encoder.layer:
            h = layer(h, ext)
        return h


class Classifier(nn.Module):
    """BertForSequenceClassification with mean pooling over real tokens (peft4j's Pooling.MEAN)."""

    def __init__(self, c, num_labels):
        super().__init__()
        self.bert = Bert(c)
        self.dropout = nn.Dropout(c.get("classifier_dropout") or c["hidden_dropout_prob"])
        self.classifier = nn.Linear(c["hidden_size"], num_labels)

    def forward(self, ids, mask):
        h = self.bert(ids, mask)
        m = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return self.classifier(self.dropout(pooled))


class LoraLinear(nn.Module):
    """PEFT's lora.Linear without dropout: base(x) + scaling * B(A(x)); A Kaiming-uniform, B zero."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base_layer(x) + self.lora_B(self.lora_A(x)) * self.scaling


def build(model_dir, mode, r, alpha, dropout):
    with open(f"{model_dir}/config.json") as f:
        c = json.load(f)
    if dropout is not None:
        c["hidden_dropout_prob"] = dropout
        c["attention_probs_dropout_prob"] = dropout
        c["classifier_dropout"] = None
    num_labels = len(c.get("id2label", {})) or 2
    model = Classifier(c, num_labels)
    state = load_safetensors(f"{model_dir}/model.safetensors")
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    unexpected = [k for k in unexpected if not k.endswith("position_ids") and not k.startswith("bert.pooler.")]
    if missing or unexpected:
        raise SystemExit(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    if mode == "lora":
        for p in model.parameters():
            p.requires_grad_(False)
        for layer in model.bert.encoder.layer:
            sa = getattr(layer.attention, "self")
            sa.query = LoraLinear(sa.query, r, alpha)
            sa.value = LoraLinear(sa.value, r, alpha)
        for p in model.classifier.parameters():
            p.requires_grad_(True)
    return model


def optimizer(model, lr, wd):
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}], lr=lr)


def proc_mem():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return {"rss_kb": out.get("VmRSS", -1), "hwm_kb": out.get("VmHWM", -1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="folder written by BertForSequenceClassification.save")
    ap.add_argument("--batch", required=True, help="batch.json: input_ids [B][T], attention_mask [B][T], labels [B]")
    ap.add_argument("--mode", choices=["full", "lora", "infer"], required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--dropout", type=float, default=None, help="override both dropouts (default: the config's)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0, help="stand-alone: time this many steps and exit")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    with open(a.batch) as f:
        b = json.load(f)
    ids = torch.tensor(b["input_ids"], dtype=torch.long)
    mask = torch.tensor(b["attention_mask"], dtype=torch.long)
    labels = torch.tensor(b["labels"], dtype=torch.long)
    model = build(a.model, "lora" if a.mode == "lora" else "full", a.rank, a.alpha, a.dropout)

    if a.mode == "infer":
        model.eval()

        def step():
            with torch.no_grad():
                return float(model.bert(ids, mask)[0, 0, 0])
    else:
        model.train()
        opt = optimizer(model, a.lr, a.weight_decay)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(ids, mask), labels)
            loss.backward()
            opt.step()
            return float(loss)

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    for _ in range(a.warmup):
        step()

    def timed(k):
        times = []
        for _ in range(k):
            t = time.perf_counter()
            step()
            times.append((time.perf_counter() - t) * 1000.0)
        return times

    if a.steps > 0:
        times = timed(a.steps)
        ms = sum(times) / len(times)
        print(json.dumps({"mode": a.mode, "threads": torch.get_num_threads(), "trainable": trainable,
                          "mean_ms": ms, "tokens_per_s": ids.numel() / (ms / 1000.0), **proc_mem()}))
        return

    # harness protocol: one JSON line per command
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "trainable": trainable, "config": torch.__config__.parallel_info().splitlines()[:6]}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "round":
            print(json.dumps({"times_ms": timed(int(cmd[1]))}), flush=True)
        elif cmd[0] == "mem":
            print(json.dumps(proc_mem()), flush=True)
        elif cmd[0] == "quit":
            print(json.dumps({"bye": True}), flush=True)
            return
        else:
            print(json.dumps({"error": f"unknown command {cmd[0]}"}), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Independent reference for peft4j's bottleneck adapters: AdapterHub `adapters` v1.2 semantics and
folder layout, re-implemented in plain PyTorch (the `adapters` package is not installed here).

Read from the `adapters` sources (adapter-hub/adapters, src/adapters/):
* configuration/adapter_config.py: BnConfig keys and defaults; seq_bn (SeqBnConfig: original_ln_before
  True, ReLU, factor 16, output adapter only), double_seq_bn (DoubleSeqBnConfig: mh + output adapter,
  swish, factor 16), par_bn (ParBnConfig: is_parallel, factor 2, scaling 4.0, init mam_adapter);
* methods/bottleneck.py: BottleneckLayer.bottleneck_layer_forward (pre_forward of the adapter, its
  forward, post_forward), bottleneck size int(hidden_size // reduction_factor), a reduction_factor
  mapping {"<layer>": f, "default": f};
* methods/modeling.py: Adapter / ParallelAdapter: adapter_down = Sequential[LayerNorm if ln_before,
  Linear(hidden, d), activation], adapter_up = Linear(d, hidden), adapter_norm_after if ln_after,
  scaling float or nn.Parameter ("learned": ones(1), "channel": ones(hidden));
  sequential:  residual = h (residual_before_ln True); if original_ln_before: h = LN(h + input);
               residual = h (residual_before_ln False); out = up(act(down(h))) * scaling;
               adapter_residual_before_ln: out + residual before adapter_norm_after, else after;
               post: original_ln_after: LN(out + input)
  parallel:    out = up(act(down(input))) * scaling (adapter_norm_after), then out + h, then LN(. + input);
* models/bert/modeling_bert.py (BertSelfOutput / BertOutput): h = dropout(dense(x)), then
  bottleneck_layer_forward(h, input_tensor, self.LayerNorm): modules `attention.output.adapters.<name>`
  (mh_adapter) and `output.adapters.<name>` (output_adapter);
* loading.py / configuration/model_adapters_config.py (build_full_config) / utils.py: adapter_config.json
  = {"config": {...}, "hidden_size", "model_class", "model_name", "model_type", "name",
  "version": "adapters.1.2.0"} (json.dump indent 2, sort_keys); weights = the model state dict filtered
  on ".adapters.<name>." in "adapter.safetensors" (use_safetensors=True) or "pytorch_adapter.bin".

Usage (Debian's torch: /usr/bin/python3):
  /usr/bin/python3 scripts/reference/bottleneck_reference.py make
      writes AdapterHub-layout folders for the tiny BERT fixture with expected last_hidden_state to
      peft-adapter/src/test/resources/fixtures/bottleneck/<case>/ (adapter/, expected.safetensors, case.json)
  /usr/bin/python3 scripts/reference/bottleneck_reference.py presets | bin | fusion
      one part of `make`: the pinned presets' expected logits and gradients; the bert-par-bn case as
      pytorch_adapter.bin + pytorch_model_head.bin; the AdapterFusion over two adapters
  /usr/bin/python3 scripts/reference/bottleneck_reference.py check peft-adapter/target/bn-interop
      checks folders peft4j saved (case.json + io.safetensors with inputs and peft4j's outputs);
      exit status 1 if a max abs error exceeds --tol (default 1e-4).
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lora_reference as lr  # noqa: E402
import make_decoder_fixtures as mdf  # noqa: E402

BN_FIXTURES = os.path.join(lr.ROOT, "peft-adapter", "src", "test", "resources", "fixtures", "bottleneck")

BASE = {
    "architecture": "bottleneck", "mh_adapter": False, "output_adapter": True, "reduction_factor": 16,
    "non_linearity": "relu", "original_ln_before": False, "original_ln_after": True, "ln_before": False,
    "ln_after": False, "init_weights": "bert", "init_weights_seed": None, "is_parallel": False, "scaling": 1.0,
    "use_gating": False, "residual_before_ln": True, "adapter_residual_before_ln": False, "inv_adapter": None,
    "inv_adapter_reduction_factor": None, "cross_adapter": False, "leave_out": [], "dropout": 0.0,
    "phm_layer": False, "phm_dim": 4, "factorized_phm_W": True, "shared_W_phm": False, "shared_phm_rule": True,
    "factorized_phm_rule": False, "phm_c_init": "normal", "phm_init_range": 0.0001, "learn_phm": True,
    "hypercomplex_nonlinearity": "glorot-uniform", "phm_rank": 1, "phm_bias": True, "stochastic_depth": 0.0,
}
PRESETS = {
    "seq_bn": dict(BASE, original_ln_before=True, original_ln_after=True, residual_before_ln=True,
                   mh_adapter=False, output_adapter=True, non_linearity="relu", reduction_factor=16),
    "double_seq_bn": dict(BASE, original_ln_before=False, original_ln_after=True, residual_before_ln=True,
                          mh_adapter=True, output_adapter=True, non_linearity="swish", reduction_factor=16),
    "par_bn": dict(BASE, mh_adapter=False, output_adapter=True, non_linearity="relu", reduction_factor=2,
                   init_weights="mam_adapter", is_parallel=True, scaling=4.0),
}

CASES = [
    # name, preset, overrides, key prefix of the saved state dict (a bare BertModel: none)
    ("bert-seq-bn", "seq_bn", {"reduction_factor": 4}, ""),
    ("bert-double-seq-bn", "double_seq_bn", {"reduction_factor": 4}, ""),
    ("bert-par-bn", "par_bn", {}, "bert."),
    ("bert-general", None, {"mh_adapter": True, "output_adapter": True, "non_linearity": "tanh",
                            "reduction_factor": {"0": 2, "default": 4}, "ln_before": True, "ln_after": True,
                            "adapter_residual_before_ln": True, "residual_before_ln": False,
                            "original_ln_before": True, "original_ln_after": False, "scaling": "learned",
                            "leave_out": [1]}, ""),
]


def activation(name, x):
    name = name.lower()
    if name == "tanh":
        return torch.tanh(x)
    if name == "gelu":
        return mdf.gelu_erf(x)
    return mdf.act(name, x)


def bottleneck(c, hidden, layer):
    rf = c["reduction_factor"]
    if isinstance(rf, dict):
        rf = rf.get(str(layer), rf.get("default"))
    return int(hidden // rf)


def adapter_keys(c, hidden, layer, where, prefix, name):
    """{key: shape} of one adapter at encoder.layer.<layer>.<where> ('attention.output' or 'output')."""
    d = bottleneck(c, hidden, layer)
    pre = f"{prefix}encoder.layer.{layer}.{where}.adapters.{name}."
    keys = {}
    i = 0
    if c["ln_before"]:
        keys[pre + "adapter_down.0.weight"] = (hidden,)
        keys[pre + "adapter_down.0.bias"] = (hidden,)
        i = 1
    keys[pre + f"adapter_down.{i}.weight"] = (d, hidden)
    keys[pre + f"adapter_down.{i}.bias"] = (d,)
    keys[pre + "adapter_up.weight"] = (hidden, d)
    keys[pre + "adapter_up.bias"] = (hidden,)
    if c["ln_after"]:
        keys[pre + "adapter_norm_after.weight"] = (hidden,)
        keys[pre + "adapter_norm_after.bias"] = (hidden,)
    if c["scaling"] == "learned":
        keys[pre + "scaling"] = (1,)
    elif c["scaling"] == "channel":
        keys[pre + "scaling"] = (hidden,)
    return keys


def places(c, layers):
    out = []
    for i in range(layers):
        if i in c["leave_out"]:
            continue
        if c["mh_adapter"]:
            out.append((i, "attention.output"))
        if c["output_adapter"]:
            out.append((i, "output"))
    return out


def adapter_forward(c, t, pre, h, inp, ln):
    """AdapterHub's bottleneck_layer_forward for one adapter; t holds its tensors under `pre`."""
    def down_up(x):
        i = 0
        if c["ln_before"]:
            x = mdf.layer_norm(x, t[pre + "adapter_down.0.weight"], t[pre + "adapter_down.0.bias"], 1e-5)
            i = 1
        x = activation(c["non_linearity"], x @ t[pre + f"adapter_down.{i}.weight"].T + t[pre + f"adapter_down.{i}.bias"])
        up = x @ t[pre + "adapter_up.weight"].T + t[pre + "adapter_up.bias"]
        s = c["scaling"]
        return up * (t[pre + "scaling"] if isinstance(s, str) else s)

    def norm_after(o):
        return mdf.layer_norm(o, t[pre + "adapter_norm_after.weight"], t[pre + "adapter_norm_after.bias"], 1e-5)

    if c["is_parallel"]:
        out = down_up(inp)                      # ParallelAdapter.pre_forward: the input tensor
        if c["ln_after"]:
            out = norm_after(out)
        out = out + h                           # post_forward
        return ln(out + inp) if c["original_ln_after"] else out + inp
    rbl = c["residual_before_ln"]
    residual = h if rbl is True else None
    x = h
    if c["original_ln_before"]:
        x = h + inp
        if rbl == "post_add":
            residual = x
        x = ln(x)
    if not rbl:
        residual = x
    out = down_up(x)
    if c["adapter_residual_before_ln"]:
        out = out + residual
    if c["ln_after"]:
        out = norm_after(out)
    if not c["adapter_residual_before_ln"]:
        out = out + residual
    if c["original_ln_after"]:
        out = ln(out + inp)
    return out


def pre_forward(c, h, inp, ln):
    if c["is_parallel"]:
        return inp, inp
    rbl = c["residual_before_ln"]
    residual = h if rbl is True else None
    x = h
    if c["original_ln_before"]:
        x = h + inp
        if rbl == "post_add":
            residual = x
        x = ln(x)
    if not rbl:
        residual = x
    return x, residual


def body(c, t, pre, x, residual):
    i = 0
    if c["ln_before"]:
        x = mdf.layer_norm(x, t[pre + "adapter_down.0.weight"], t[pre + "adapter_down.0.bias"], 1e-5)
        i = 1
    x = activation(c["non_linearity"], x @ t[pre + f"adapter_down.{i}.weight"].T + t[pre + f"adapter_down.{i}.bias"])
    out = x @ t[pre + "adapter_up.weight"].T + t[pre + "adapter_up.bias"]
    s = c["scaling"]
    out = out * (t[pre + "scaling"] if isinstance(s, str) else s)
    norm_after = lambda o: mdf.layer_norm(o, t[pre + "adapter_norm_after.weight"], t[pre + "adapter_norm_after.bias"], 1e-5)  # noqa: E731
    if c["is_parallel"]:
        return norm_after(out) if c["ln_after"] else out
    if c["adapter_residual_before_ln"]:
        out = out + residual
    if c["ln_after"]:
        out = norm_after(out)
    if not c["adapter_residual_before_ln"]:
        out = out + residual
    return out


def post_forward(c, o, h, inp, ln):
    if c["is_parallel"]:
        o = o + h
    return ln(o + inp) if c["original_ln_after"] else o


def composed(mode, adapters, weights, h, inp, ln, i, where):
    """AdapterHub's compose_stack / compose_average over [(config, tensors, name)] at one place."""
    held = [(c, t, n) for c, t, n in adapters if (i, where) in set(places(c, 99))]
    pre = lambda n: f"encoder.layer.{i}.{where}.adapters.{n}."  # noqa: E731
    if not held:
        return ln(h + inp)
    if mode == "stack":
        cur = h
        for c, t, n in held:
            x, res = pre_forward(c, cur, inp, ln)
            cur = body(c, t, pre(n), x, res)
        return post_forward(held[-1][0], cur, h, inp, ln)
    c0 = held[0][0]
    x, res = pre_forward(c0, h, inp, ln)
    outs = torch.stack([body(c, t, pre(n), x, res) for c, t, n in held], 0)
    w = torch.tensor([weights[k] for k, (c, t, n) in enumerate(adapters) if (c, t, n) in held], dtype=outs.dtype)
    mean = torch.mean(outs * w[:, None, None, None], dim=0)       # as adapters' BottleneckLayer.mean
    return post_forward(held[-1][0], mean, h, inp, ln)


def bert_forward(p, cfg, ids, types, mask, c=None, t=None, prefix="", name=None, compose=None):
    """mdf.bert_forward with AdapterHub's adapter layers in BertSelfOutput / BertOutput."""
    H, L, nh = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
    dh = H // nh
    eps = cfg["layer_norm_eps"]
    B, T = ids.shape
    pos = torch.arange(T)[None, :].expand(B, T)
    x = (p["embeddings.word_embeddings.weight"][ids] + p["embeddings.position_embeddings.weight"][pos]
         + p["embeddings.token_type_embeddings.weight"][types])
    x = mdf.layer_norm(x, p["embeddings.LayerNorm.weight"], p["embeddings.LayerNorm.bias"], eps)
    bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * mdf.NEG
    at = set(places(c, L)) if c else set()

    def close(i, where, h, inp):
        pre = f"encoder.layer.{i}.{where}"
        ln = lambda z: mdf.layer_norm(z, p[pre + ".LayerNorm.weight"], p[pre + ".LayerNorm.bias"], eps)  # noqa: E731
        if compose is not None:
            return composed(compose[0], compose[1], compose[2], h, inp, ln, i, where)
        if (i, where) in at:
            return adapter_forward(c, t, f"{prefix}{pre}.adapters.{name}.", h, inp, ln)
        return ln(h + inp)

    for i in range(L):
        pre = f"encoder.layer.{i}."
        q = mdf.linear(x, p, pre + "attention.self.query").view(B, T, nh, dh).transpose(1, 2)
        k = mdf.linear(x, p, pre + "attention.self.key").view(B, T, nh, dh).transpose(1, 2)
        v = mdf.linear(x, p, pre + "attention.self.value").view(B, T, nh, dh).transpose(1, 2)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(dh) + bias
        a = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, H)
        x = close(i, "attention.output", mdf.linear(a, p, pre + "attention.output.dense"), x)
        m = mdf.act(cfg["hidden_act"], mdf.linear(x, p, pre + "intermediate.dense"))
        x = close(i, "output", mdf.linear(m, p, pre + "output.dense"), x)
    return x


def make():
    os.makedirs(BN_FIXTURES, exist_ok=True)
    _, mcfg, params = lr.load_base("bert-tiny")
    inputs = lr.reference_inputs("bert-tiny")
    H, L = mcfg["hidden_size"], mcfg["num_hidden_layers"]
    for n, (case, preset, overrides, prefix) in enumerate(CASES):
        c = dict(PRESETS[preset] if preset else BASE)
        c.update(overrides)
        name = case.replace("bert-", "").replace("-", "_")
        g = torch.Generator().manual_seed(9200 + n)
        t = {}
        for layer, where in places(c, L):
            for k, shape in adapter_keys(c, H, layer, where, prefix, name).items():
                if k.endswith("scaling"):
                    t[k] = 1.0 + 0.5 * torch.randn(shape, generator=g)
                elif ".adapter_norm_after." in k or k.endswith("adapter_down.0.weight") and c["ln_before"] and len(shape) == 1:
                    t[k] = (1.0 if k.endswith("weight") else 0.0) + 0.2 * torch.randn(shape, generator=g)
                elif c["ln_before"] and k.endswith("adapter_down.0.bias"):
                    t[k] = 0.2 * torch.randn(shape, generator=g)
                else:
                    t[k] = 0.4 * torch.randn(shape, generator=g)   # as after training: the up projection non-zero
        with torch.no_grad():
            out = bert_forward(params, mcfg, inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"],
                               c, t, prefix, name)
            base = bert_forward(params, mcfg, inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"])
            ref, _ = mdf.bert_forward(params, mcfg, inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"])
        assert float((base - ref).abs().max()) < 1e-12, "the adapter-free forward must equal make_decoder_fixtures'"
        d = os.path.join(BN_FIXTURES, case)
        ad = os.path.join(d, "adapter")
        os.makedirs(ad, exist_ok=True)
        full = {"config": c, "hidden_size": H,
                "model_class": "BertForSequenceClassification" if prefix else "BertModel",
                "model_name": "bert-tiny", "model_type": "bert", "name": name, "version": "adapters.1.2.0"}
        with open(os.path.join(ad, "adapter_config.json"), "w") as f:
            json.dump(full, f, indent=2, sort_keys=True)
        mdf.write_safetensors(os.path.join(ad, "adapter.safetensors"), {k: v.to(torch.float32) for k, v in t.items()})
        expected = dict(inputs)
        expected["output"] = out.to(torch.float32)
        mdf.write_safetensors(os.path.join(d, "expected.safetensors"), expected)
        meta = {"base_fixture": "bert-tiny", "name": name, "tensors": len(t),
                "max_abs_change_vs_base": float((out - base).abs().max()), "seed": 9200 + n,
                "computed_in": "float64, torch " + torch.__version__}
        mdf.write_json(os.path.join(d, "case.json"), meta)
        print(f"{case}: {len(t)} tensors, max |adapter - base| = {meta['max_abs_change_vs_base']:.4f}")


def make_compose():
    """Two adapters (seq_bn and double_seq_bn, factor 4) in AdapterHub folders, with the outputs of
    Stack(a, b) and Average(a, b, weights=[0.7, 0.3])."""
    _, mcfg, params = lr.load_base("bert-tiny")
    inputs = lr.reference_inputs("bert-tiny")
    H, L = mcfg["hidden_size"], mcfg["num_hidden_layers"]
    g = torch.Generator().manual_seed(9300)
    d = os.path.join(BN_FIXTURES, "compose")
    adapters = []
    for name, preset in (("a", "seq_bn"), ("b", "double_seq_bn")):
        c = dict(PRESETS[preset], reduction_factor=4)
        t = {}
        for layer, where in places(c, L):
            for k, shape in adapter_keys(c, H, layer, where, "", name).items():
                t[k] = 0.4 * torch.randn(shape, generator=g)
        adapters.append((c, t, name))
        ad = os.path.join(d, "adapter_" + name)
        os.makedirs(ad, exist_ok=True)
        with open(os.path.join(ad, "adapter_config.json"), "w") as f:
            json.dump({"config": c, "hidden_size": H, "model_class": "BertModel", "model_name": "bert-tiny",
                       "model_type": "bert", "name": name, "version": "adapters.1.2.0"}, f, indent=2, sort_keys=True)
        mdf.write_safetensors(os.path.join(ad, "adapter.safetensors"), {k: v.to(torch.float32) for k, v in t.items()})
    expected = dict(inputs)
    ii = (inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"])
    with torch.no_grad():
        expected["stack"] = bert_forward(params, mcfg, ii[0], ii[1], ii[2], compose=("stack", adapters, None)).to(torch.float32)
        expected["average"] = bert_forward(params, mcfg, ii[0], ii[1], ii[2],
                                           compose=("average", adapters, [0.7, 0.3])).to(torch.float32)
    mdf.write_safetensors(os.path.join(d, "expected.safetensors"), expected)
    print(f"compose: Stack(a, b) and Average(a, b, [0.7, 0.3]) written")


def make_presets():
    """The presets as `peft4j compare` sets them up (seed 7, mean pooling, a new 2-label head): their
    initial tensors were dumped once by peft4j before bottleneck adapters moved onto PeftModel
    (presets/<preset>.safetensors, model state-dict keys); this computes, independently, the logits
    and the gradients of the mean cross-entropy (labels 0, 1, 0, ...) with respect to every one of
    those tensors, so a test pins today's numerics to this script rather than to peft4j."""
    _, mcfg, params = lr.load_base("bert-tiny")
    inputs = lr.reference_inputs("bert-tiny")
    d = os.path.join(BN_FIXTURES, "presets")
    expected = dict(inputs)
    for preset in ("seq_bn", "double_seq_bn", "par_bn"):
        raw = mdf.read_safetensors(os.path.join(d, preset + ".safetensors"))
        t = {k: torch.from_numpy(np.array(v, dtype=np.float64)).requires_grad_(True) for k, v in raw.items()}
        ids, types, mask = inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"]
        h = bert_forward(params, mcfg, ids, types, mask, PRESETS[preset], t, "bert.", preset)
        m = mask.to(h.dtype)[:, :, None]
        pooled = (h * m).sum(1) / m.sum(1)
        logits = pooled @ t["classifier.weight"].T + t["classifier.bias"]
        labels = torch.arange(ids.shape[0]) % 2
        loss = torch.nn.functional.cross_entropy(logits, labels)
        loss.backward()
        expected[preset + ".logits"] = logits.detach().to(torch.float32)
        expected[preset + ".loss"] = loss.detach().reshape(1).to(torch.float32)
        for k, v in t.items():
            expected[preset + ".grad." + k] = v.grad.to(torch.float32)
        print(f"presets: {preset} loss {float(loss):.6f}, {len(t)} tensors")
    mdf.write_safetensors(os.path.join(d, "expected.safetensors"), expected)


def make_bin():
    """The bert-par-bn case as AdapterHub's default (non-safetensors) save writes it: pytorch_adapter.bin
    (torch.save of the filtered state dict) with a static head saved beside it (head_config.json,
    pytorch_model_head.bin: classifier.weight / classifier.bias, as for a model with a Hugging Face head),
    plus the logits of mean pooling + that classifier, for TorchBinFile (the restricted unpickler)."""
    import collections
    _, mcfg, params = lr.load_base("bert-tiny")
    inputs = lr.reference_inputs("bert-tiny")
    H = mcfg["hidden_size"]
    src = os.path.join(BN_FIXTURES, "bert-par-bn", "adapter")
    with open(os.path.join(src, "adapter_config.json")) as f:
        full = json.load(f)
    raw = mdf.read_safetensors(os.path.join(src, "adapter.safetensors"))
    t = collections.OrderedDict((k, torch.from_numpy(np.array(raw[k], dtype=np.float32))) for k in sorted(raw))
    d = os.path.join(BN_FIXTURES, "bert-par-bn-bin")
    ad = os.path.join(d, "adapter")
    os.makedirs(ad, exist_ok=True)
    with open(os.path.join(ad, "adapter_config.json"), "w") as f:
        json.dump(full, f, indent=2, sort_keys=True)
    torch.save(t, os.path.join(ad, "pytorch_adapter.bin"))
    g = torch.Generator().manual_seed(9400)
    head = collections.OrderedDict([("classifier.weight", (0.5 * torch.randn(2, H, generator=g)).to(torch.float32)),
                                    ("classifier.bias", (0.1 * torch.randn(2, generator=g)).to(torch.float32))])
    torch.save(head, os.path.join(ad, "pytorch_model_head.bin"))
    with open(os.path.join(ad, "head_config.json"), "w") as f:
        json.dump({"config": None, "hidden_size": H, "label2id": {"LABEL_0": 0, "LABEL_1": 1},
                   "model_class": "BertForSequenceClassification", "model_name": "bert-tiny", "model_type": "bert",
                   "name": None, "num_labels": 2, "version": "adapters.1.2.0"}, f, indent=2, sort_keys=True)
    c = dict(BASE)
    c.update(full["config"])
    tt = {k: v.to(torch.float64) for k, v in t.items()}
    ids, types, mask = inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"]
    with torch.no_grad():
        h = bert_forward(params, mcfg, ids, types, mask, c, tt, "bert.", full["name"])
        m = mask.to(h.dtype)[:, :, None]
        logits = ((h * m).sum(1) / m.sum(1)) @ head["classifier.weight"].to(torch.float64).T + head["classifier.bias"].to(torch.float64)
    expected = dict(inputs)
    expected["output"] = h.to(torch.float32)
    expected["logits"] = logits.to(torch.float32)
    mdf.write_safetensors(os.path.join(d, "expected.safetensors"), expected)
    print(f"bert-par-bn-bin: pytorch_adapter.bin ({len(t)} tensors) and pytorch_model_head.bin written (torch {torch.__version__})")


def up_only(c, t, pre, x):
    """Adapter.forward's `up`: up(act(down(x))) * scaling, before the adapter's dropout and residual."""
    i = 0
    if c["ln_before"]:
        x = mdf.layer_norm(x, t[pre + "adapter_down.0.weight"], t[pre + "adapter_down.0.bias"], 1e-5)
        i = 1
    x = activation(c["non_linearity"], x @ t[pre + f"adapter_down.{i}.weight"].T + t[pre + f"adapter_down.{i}.bias"])
    out = x @ t[pre + "adapter_up.weight"].T + t[pre + "adapter_up.bias"]
    s = c["scaling"]
    return out * (t[pre + "scaling"] if isinstance(s, str) else s)


def fusion_forward(fc, ft, fpre, adapters, h, inp, ln, i, where):
    """AdapterHub's compose_fuse + BertFusion.forward (eval: no dropout, T = 1) at one place;
    adapters = [(config, tensors, name)], ft the fusion tensors under fpre."""
    c_last, t_last, n_last = adapters[-1]
    pre = lambda n: f"encoder.layer.{i}.{where}.adapters.{n}."  # noqa: E731
    query_pre = h
    x, residual = pre_forward(c_last, h, inp, ln)             # Adapter.pre_forward of the last fused adapter
    query = query_pre if fc["query_before_ln"] else x
    if c_last["is_parallel"]:
        query = inp
    ups = torch.stack([up_only(c, t, pre(n), x) for c, t, n in adapters]).permute(1, 2, 0, 3)   # [B, T, n, H]
    value = ups
    if fc["residual_before"]:
        value = value + residual[:, :, None, :]
    q = query @ ft[fpre + "query.weight"].T + ft[fpre + "query.bias"] if fc["query"] else query
    k = ups @ ft[fpre + "key.weight"].T + ft[fpre + "key.bias"] if fc["key"] else ups
    v = value @ ft[fpre + "value.weight"].T if fc["value"] and fc["value_before_softmax"] else value
    scores = torch.squeeze(torch.matmul(q.unsqueeze(2), k.transpose(-2, -1)), dim=2)
    probs = torch.softmax(scores, dim=-1)
    ctx = torch.squeeze(torch.matmul(probs.unsqueeze(2), v), dim=2)
    if fc["value"] and not fc["value_before_softmax"]:
        ctx = ctx @ ft[fpre + "value.weight"].T
    if not fc["residual_before"]:
        ctx = ctx + residual
    return post_forward(c_last, ctx, h, inp, ln)


FUSION_STATIC = {"key": True, "query": True, "value": False, "query_before_ln": False, "regularization": False,
                 "residual_before": False, "temperature": False, "value_before_softmax": True,
                 "value_initialized": False, "dropout_prob": None}


def fused_bert_forward(params, mcfg, ids, types, mask, fc, ft, fusion_name, adapters, prefix=""):
    """bert_forward with Fuse(adapters) active at every place all of them hold."""
    L = mcfg["num_hidden_layers"]
    eps = mcfg["layer_norm_eps"]
    held = set(places(adapters[0][0], L))
    for c, _, _ in adapters[1:]:
        held &= set(places(c, L))
    strip = lambda t: {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in t.items()}  # noqa: E731
    ads = [(c, strip(t), n) for c, t, n in adapters]
    ftt = strip(ft)

    def compose(mode, _a, _w, h, inp, ln, i, where):
        if (i, where) in held:
            return fusion_forward(fc, ftt, f"encoder.layer.{i}.{where}.adapter_fusion_layer.{fusion_name}.", ads, h, inp, ln, i, where)
        return ln(h + inp)
    return bert_forward_compose(params, mcfg, ids, types, mask, compose)


def bert_forward_compose(params, mcfg, ids, types, mask, close_fn):
    """bert_forward with every residual step closed by close_fn(None, None, None, h, inp, ln, i, where)."""
    p, cfg = params, mcfg
    H, L, nh = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
    dh = H // nh
    eps = cfg["layer_norm_eps"]
    B, T = ids.shape
    pos = torch.arange(T)[None, :].expand(B, T)
    x = (p["embeddings.word_embeddings.weight"][ids] + p["embeddings.position_embeddings.weight"][pos]
         + p["embeddings.token_type_embeddings.weight"][types])
    x = mdf.layer_norm(x, p["embeddings.LayerNorm.weight"], p["embeddings.LayerNorm.bias"], eps)
    bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * mdf.NEG

    def close(i, where, h, inp):
        pre = f"encoder.layer.{i}.{where}"
        ln = lambda z: mdf.layer_norm(z, p[pre + ".LayerNorm.weight"], p[pre + ".LayerNorm.bias"], eps)  # noqa: E731
        return close_fn(None, None, None, h, inp, ln, i, where)

    for i in range(L):
        pre = f"encoder.layer.{i}."
        q = mdf.linear(x, p, pre + "attention.self.query").view(B, T, nh, dh).transpose(1, 2)
        k = mdf.linear(x, p, pre + "attention.self.key").view(B, T, nh, dh).transpose(1, 2)
        v = mdf.linear(x, p, pre + "attention.self.value").view(B, T, nh, dh).transpose(1, 2)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(dh) + bias
        a = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, H)
        x = close(i, "attention.output", mdf.linear(a, p, pre + "attention.output.dense"), x)
        m = mdf.act(cfg["hidden_act"], mdf.linear(x, p, pre + "intermediate.dense"))
        x = close(i, "output", mdf.linear(m, p, pre + "output.dense"), x)
    return x


def make_fusion():
    """An AdapterFusion (static config) over two seq_bn adapters (factor 4) on the tiny BERT, in the folder
    layout peft4j reads and writes: fusion/adapter_fusion_config.json + model_adapter_fusion.safetensors
    (keys encoder.layer.N.output.adapter_fusion_layer.a,b.{query,key}.{weight,bias}) and the adapters in
    fusion/a/, fusion/b/ (AdapterHub adapter folders); expected last_hidden_state of Fuse(a, b)."""
    _, mcfg, params = lr.load_base("bert-tiny")
    inputs = lr.reference_inputs("bert-tiny")
    H, L = mcfg["hidden_size"], mcfg["num_hidden_layers"]
    g = torch.Generator().manual_seed(9500)
    d = os.path.join(BN_FIXTURES, "fusion")
    adapters = []
    for name in ("a", "b"):
        c = dict(PRESETS["seq_bn"], reduction_factor=4)
        t = {}
        for layer, where in places(c, L):
            for k, shape in adapter_keys(c, H, layer, where, "", name).items():
                t[k] = 0.4 * torch.randn(shape, generator=g, dtype=torch.float64)
        adapters.append((c, t, name))
        ad = os.path.join(d, name)
        os.makedirs(ad, exist_ok=True)
        with open(os.path.join(ad, "adapter_config.json"), "w") as f:
            json.dump({"config": c, "hidden_size": H, "model_class": "BertModel", "model_name": "bert-tiny",
                       "model_type": "bert", "name": name, "version": "adapters.1.2.0"}, f, indent=2, sort_keys=True)
        mdf.write_safetensors(os.path.join(ad, "adapter.safetensors"), {k: v.to(torch.float32) for k, v in t.items()})
    fname = "a,b"
    ft = {}
    for layer, where in places(adapters[0][0], L):
        pre = f"encoder.layer.{layer}.{where}.adapter_fusion_layer.{fname}."
        for proj in ("query", "key"):
            ft[pre + proj + ".weight"] = 0.3 * torch.randn(H, H, generator=g, dtype=torch.float64)
            ft[pre + proj + ".bias"] = 0.1 * torch.randn(H, generator=g, dtype=torch.float64)
    with open(os.path.join(d, "adapter_fusion_config.json"), "w") as f:
        json.dump({"adapter_names": ["a", "b"], "config": FUSION_STATIC, "hidden_size": H, "model_class": "BertModel",
                   "model_name": "bert-tiny", "model_type": "bert", "name": fname, "version": "adapters.1.2.0"},
                  f, indent=2, sort_keys=True)
    mdf.write_safetensors(os.path.join(d, "model_adapter_fusion.safetensors"), {k: v.to(torch.float32) for k, v in ft.items()})
    # the stored float32 values are what peft4j reads: compute from them
    adapters = [(c, {k: v.to(torch.float32).to(torch.float64) for k, v in t.items()}, n) for c, t, n in adapters]
    ft = {k: v.to(torch.float32).to(torch.float64) for k, v in ft.items()}
    ids, types, mask = inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"]
    with torch.no_grad():
        out = fused_bert_forward(params, mcfg, ids, types, mask, FUSION_STATIC, ft, fname, adapters)
        only_b = bert_forward(params, mcfg, ids, types, mask, adapters[1][0], adapters[1][1], "", "b")
    expected = dict(inputs)
    expected["output"] = out.to(torch.float32)
    mdf.write_safetensors(os.path.join(d, "expected.safetensors"), expected)
    print(f"fusion: Fuse(a, b) written; max |fusion - b alone| = {float((out - only_b).abs().max()):.4f}")


def check_fusion(root, tol):
    """Checks fusion folders peft4j saved: <root>/<case>/fusion/ (adapter_fusion_config.json, the fusion
    weights, one AdapterHub folder per fused adapter) and <root>/<case>/io.safetensors."""
    cases = sorted(x for x in os.listdir(root) if os.path.isfile(os.path.join(root, x, "io.safetensors")))
    _, mcfg, params = lr.load_base("bert-tiny")
    failed = False
    for case in cases:
        d = os.path.join(root, case, "fusion")
        with open(os.path.join(d, "adapter_fusion_config.json")) as f:
            full = json.load(f)
        for k in ("adapter_names", "config", "hidden_size", "model_class", "model_name", "model_type", "name", "version"):
            if k not in full:
                print(f"{case}: adapter_fusion_config.json lacks '{k}'")
                failed = True
        fc = dict(FUSION_STATIC)
        fc.update(full["config"])
        raw = mdf.read_safetensors(os.path.join(d, "model_adapter_fusion.safetensors"))
        ft = {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in raw.items()}
        prefix = "bert." if any(k.startswith("bert.") for k in ft) else ""
        adapters = []
        for n in full["adapter_names"]:
            afull, c, t = read_folder(os.path.join(d, n))
            adapters.append((c, t, n))
        io = mdf.read_safetensors(os.path.join(root, case, "io.safetensors"))
        ins = {k: torch.from_numpy(np.array(io[k], dtype=np.int64)) for k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.no_grad():
            ref = fused_bert_forward(params, mcfg, ins["input_ids"], ins["token_type_ids"], ins["attention_mask"], fc, ft,
                                     full["name"], adapters, prefix)
        got = torch.from_numpy(np.array(io["output"], dtype=np.float64))
        err = float((ref - got).abs().max())
        ok = err <= tol
        failed |= not ok
        print(f"{case}: fusion {full['name']!r} over {full['adapter_names']}, max |python - peft4j| = {err:.3e} "
              f"({'ok' if ok else 'FAIL'}, tol {tol:g})")
    return 1 if failed or not cases else 0


def read_folder(folder):
    with open(os.path.join(folder, "adapter_config.json")) as f:
        full = json.load(f)
    for k in ("config", "hidden_size", "model_class", "model_name", "model_type", "name", "version"):
        if k not in full:
            raise ValueError(f"{folder}/adapter_config.json lacks '{k}'")
    if not full["version"].startswith("adapters."):
        raise ValueError(f"version {full['version']!r} is not 'adapters.<version>'")
    c = dict(BASE)
    c.update(full["config"])
    raw = mdf.read_safetensors(os.path.join(folder, "adapter.safetensors"))
    return full, c, {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in raw.items()}


def check(root, tol):
    cases = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "case.json")))
    if not cases:
        print(f"no case folders under {root}")
        return 1
    _, mcfg, params = lr.load_base("bert-tiny")
    H, L = mcfg["hidden_size"], mcfg["num_hidden_layers"]
    failed, worst = False, 0.0
    for case in cases:
        d = os.path.join(root, case)
        full, c, t = read_folder(os.path.join(d, "adapter"))
        name = full["name"]
        prefix = "bert." if any(k.startswith("bert.") for k in t) else ""
        want = {}
        for layer, where in places(c, L):
            want.update(adapter_keys(c, H, layer, where, prefix, name))
        got_keys = {k: tuple(v.shape) for k, v in t.items()}
        if got_keys != want:
            print(f"{case}: key/shape set differs from AdapterHub's: missing {sorted(set(want) - set(got_keys))[:4]}, "
                  f"extra {sorted(set(got_keys) - set(want))[:4]}, shapes {[(k, got_keys[k], want[k]) for k in want if k in got_keys and got_keys[k] != want[k]][:3]}")
            failed = True
            continue
        io = mdf.read_safetensors(os.path.join(d, "io.safetensors"))
        ins = {k: torch.from_numpy(np.array(io[k], dtype=np.int64)) for k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.no_grad():
            ref = bert_forward(params, mcfg, ins["input_ids"], ins["token_type_ids"], ins["attention_mask"], c, t, prefix, name)
        got = torch.from_numpy(np.array(io["output"], dtype=np.float64))
        err = float((ref - got).abs().max())
        worst = max(worst, err)
        ok = err <= tol
        failed |= not ok
        print(f"{case}: {len(t)} tensors, max |python - peft4j| = {err:.3e} ({'ok' if ok else 'FAIL'}, tol {tol:g})")
    print(f"worst max abs error: {worst:.3e}")
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("make")
    sub.add_parser("presets")
    sub.add_parser("bin")
    sub.add_parser("fusion")
    cf = sub.add_parser("check-fusion")
    cf.add_argument("root")
    cf.add_argument("--tol", type=float, default=1e-4)
    ck = sub.add_parser("check")
    ck.add_argument("root")
    ck.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    if args.cmd == "fusion":
        make_fusion()
        return 0
    if args.cmd == "check-fusion":
        return check_fusion(args.root, args.tol)
    if args.cmd == "bin":
        make_bin()
        make_fusion()
        return 0
    if args.cmd == "presets":
        make_presets()
        make_bin()
        make_fusion()
        return 0
    if args.cmd == "make":
        make()
        make_compose()
        make_presets()
        make_bin()
        make_fusion()
        return 0
    return check(args.root, args.tol)


if __name__ == "__main__":
    sys.exit(main())

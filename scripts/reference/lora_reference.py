#!/usr/bin/env python3
"""Independent reference for peft4j's LoRA: PEFT's LoRA math and adapter-folder layout,
re-implemented in plain PyTorch (Debian has no `peft` package).

What is implemented here, from the published PEFT sources and papers (huggingface/peft
`tuners/tuners_utils.py`, `tuners/lora/{config,layer,dora}.py`, `utils/save_and_load.py`):

* adapter folder: `adapter_config.json` (json.dumps(indent=2, sort_keys=True)) and
  `adapter_model.safetensors` with keys `base_model.model.<module>.lora_A.weight` [r, in],
  `...lora_B.weight` [out, r], `...lora_magnitude_vector` [out] (DoRA),
  `...lora_embedding_A` [r, vocab], `...lora_embedding_B` [dim, r], biases
  (`bias="all"` / `"lora_only"`) and `modules_to_save` copies under their own path;
* target matching (`check_target_module_exists`): list entries match the full module name or a
  "."-suffix, a string is a regex matched with re.fullmatch, "all-linear" is every linear layer
  but the output head (`_maybe_include_all_linear_layers`), `layers_to_transform` /
  `layers_pattern` filter list matches by layer index;
* `rank_pattern` / `alpha_pattern` (`get_pattern_key`), scaling alpha/r or alpha/sqrt(r) (rsLoRA);
* the layers' effect, in weight form (identical to the unmerged forward without dropout):
    Linear:     W' = W + s*B@A               (GPT-2 Conv1D stores W as [in, out]: transposed)
    DoRA:       W' = (m / ||W + s*B@A||_row) * (W + s*B@A)     (bias unchanged)
    Embedding:  E' = E + (s*B@A)^T           (a tied LM head keeps using E, as in PEFT)

The base models are the tiny Hugging Face-layout checkpoints the decoders helper generated under
peft-core/src/test/resources/fixtures/, run with the plain-PyTorch forwards of
scripts/reference/make_decoder_fixtures.py (imported, not copied). Adapters are combined with the
base weights in float64; the BERT and GPT-2 forwards run in float64, the LLaMA forward in float32
(its softmax and RMS norm are float32, as in transformers).

Usage (Debian's torch: /usr/bin/python3):

  /usr/bin/python3 scripts/reference/lora_reference.py make
      (a) writes PEFT-layout adapter folders for the BERT, GPT-2 and LLaMA fixtures with their
      expected outputs to peft-lora/src/test/resources/fixtures/lora/<case>/
      (adapter/, expected.safetensors, case.json). peft4j's PythonPeftFixturesTest loads them.

  /usr/bin/python3 scripts/reference/lora_reference.py check peft-lora/target/interop
      (b) checks folders that peft4j saved (PeftInteropExportTest writes them, each with
      case.json and io.safetensors holding the inputs and peft4j's outputs): reads every adapter
      folder as PEFT would, applies it to the base checkpoint, recomputes the outputs and prints
      the max abs error per adapter. Exit status 1 if any error exceeds --tol (default 1e-4).
"""
import argparse
import json
import math
import os
import re
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_decoder_fixtures as mdf  # noqa: E402  (safetensors I/O and the model forwards)

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
CORE_FIXTURES = os.path.join(ROOT, "peft-core", "src", "test", "resources", "fixtures")
LORA_FIXTURES = os.path.join(ROOT, "peft-lora", "src", "test", "resources", "fixtures", "lora")
PREFIX = "base_model.model."

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


# --------------------------------------------------------------------------------------------
# The base models: which modules exist, which are linear (and how they store W), which embed
# --------------------------------------------------------------------------------------------
def load_base(fixture):
    """(family, model config, params as float64 tensors) of a fixture folder."""
    d = os.path.join(CORE_FIXTURES, fixture)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    raw = mdf.read_safetensors(os.path.join(d, "model.safetensors"))
    params = {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in raw.items()}
    family = cfg["model_type"]
    if family in ("mistral", "qwen2"):
        family = "llama"
    return family, cfg, params


def modules_of(family, params):
    """{module path: ("linear", fan_in_fan_out) | ("embedding", None)} plus container names."""
    mods = {}
    for key, v in params.items():
        if not key.endswith(".weight") or v.dim() != 2:
            continue
        path = key[: -len(".weight")]
        last = path.split(".")[-1]
        if last in ("wte", "wpe", "word_embeddings", "position_embeddings", "token_type_embeddings", "embed_tokens"):
            mods[path] = ("embedding", None)
        elif family == "gpt2":
            mods[path] = ("linear", True)      # every GPT-2 matrix is a transformers Conv1D [in, out]
        else:
            mods[path] = ("linear", False)
    containers = set()
    for path in mods:
        parts = path.split(".")
        for i in range(1, len(parts)):
            containers.add(".".join(parts[:i]))
    return mods, containers - set(mods)


def forward(family, cfg, p, inputs):
    """The output peft4j compares: BERT last_hidden_state, decoder logits."""
    with torch.no_grad():
        if family == "bert":
            out, _ = mdf.bert_forward(p, cfg, inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"])
            return out
        mask = inputs["attention_mask"]
        if family == "gpt2":
            logits, _ = mdf.gpt2_forward(p, cfg, inputs["input_ids"], mask, mdf.hf_positions(mask))
            return logits
        # the LLaMA forward computes its softmax and RMS norm in float32 (as HF does), so it runs in
        # float32 on weights that were combined in float64
        p32 = {k: v.to(torch.float32) for k, v in p.items()}
        logits, _ = mdf.llama_forward(p32, cfg, inputs["input_ids"], mask, mdf.hf_positions(mask))
        return logits.to(torch.float64)


# --------------------------------------------------------------------------------------------
# PEFT's rules
# --------------------------------------------------------------------------------------------
def target_matches(c, key):
    """check_target_module_exists (exclude_modules and modules_to_save excluded first)."""
    ex = c.get("exclude_modules")
    if ex:
        if isinstance(ex, str):
            if re.fullmatch(ex, key):
                return False
        elif key in ex or any(key.endswith("." + e) for e in ex):
            return False
    for m in c.get("modules_to_save") or []:
        if re.match(rf"(^|.*\.){m}($|\..*)", key):
            return False
    t = c.get("target_modules")
    if isinstance(t, str):
        return re.fullmatch(t, key) is not None
    if key in t:
        return True
    found = any(key.endswith("." + n) for n in t)
    layers = c.get("layers_to_transform")
    if found and layers is not None and (not isinstance(layers, list) or len(layers) > 0):
        pattern = c.get("layers_pattern")
        idx = None
        if not pattern:
            idx = re.match(r".*\.[^.]*\.(\d+)\.", key)
        else:
            for pat in [pattern] if isinstance(pattern, str) else pattern:
                idx = re.match(rf".*\.{pat}\.(\d+)\.", key)
                if idx is not None:
                    break
        if idx is None:
            found = False
        else:
            i = int(idx.group(1))
            found = i == layers if isinstance(layers, int) else i in layers
    return found


def pattern_value(patterns, key, default):
    """get_pattern_key: the first pattern p with re.match(rf"(.*\\.)?({p})$", key)."""
    for p, v in (patterns or {}).items():
        if re.match(rf"(.*\.)?({p})$", key):
            return v
    return default


def scaling(alpha, r, rslora):
    return alpha / math.sqrt(r) if rslora else alpha / r


# --------------------------------------------------------------------------------------------
# Applying an adapter folder to base parameters
# --------------------------------------------------------------------------------------------
def read_adapter(folder):
    with open(os.path.join(folder, "adapter_config.json")) as f:
        c = json.load(f)
    if c.get("peft_type") != "LORA":
        raise ValueError(f"{folder}: peft_type {c.get('peft_type')!r} is not LORA")
    raw = mdf.read_safetensors(os.path.join(folder, "adapter_model.safetensors"))
    t = {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in raw.items()}
    return c, t


def apply_adapter(family, params, c, tensors, strict=True):
    """Effective parameters of base + adapter. Every adapter tensor must be used (strict)."""
    p = dict(params)
    mods, containers = modules_of(family, params)
    if c.get("target_modules") == "all-linear":
        # _maybe_include_all_linear_layers: every linear layer but the output head
        head = {"lm_head"} | ({"classifier", "score"} if c.get("task_type") == "SEQ_CLS" else set())
        c = dict(c, target_modules=sorted(k for k, (kind, _) in mods.items() if kind == "linear" and k not in head))
    used = set()
    targets = [k for k in sorted(mods) if target_matches(c, k)]
    bad = [k for k in sorted(containers) if target_matches(c, k)]
    if bad:
        raise ValueError(f"target_modules {c['target_modules']} match container modules {bad}, which PEFT rejects")
    if not targets:
        raise ValueError(f"target_modules {c['target_modules']} match no module")
    for path in targets:
        kind, fifo = mods[path]
        r = pattern_value(c.get("rank_pattern"), path, c.get("r", 8))
        alpha = pattern_value(c.get("alpha_pattern"), path, c.get("lora_alpha", 8))
        s = scaling(alpha, r, c.get("use_rslora", False))
        pre = PREFIX + path
        if kind == "embedding":
            a, b = tensors[pre + ".lora_embedding_A"], tensors[pre + ".lora_embedding_B"]
            used |= {pre + ".lora_embedding_A", pre + ".lora_embedding_B"}
            assert a.shape[0] == r and b.shape[1] == r, (path, a.shape, b.shape, r)
            if path.split(".")[-1] in ("wte", "embed_tokens") and "lm_head.weight" not in p:
                p["lm_head.weight"] = params[path + ".weight"]  # a tied head keeps the base table (PEFT)
            p[path + ".weight"] = params[path + ".weight"] + s * (b @ a).T
            continue
        a, b = tensors[pre + ".lora_A.weight"], tensors[pre + ".lora_B.weight"]
        used |= {pre + ".lora_A.weight", pre + ".lora_B.weight"}
        assert a.shape[0] == r and b.shape[1] == r, (path, a.shape, b.shape, r)
        w = params[path + ".weight"]
        w_oi = w.T if fifo else w                       # [out, in]
        v = w_oi + s * (b @ a)
        if c.get("use_dora", False):
            m = tensors[pre + ".lora_magnitude_vector"].reshape(-1)
            used.add(pre + ".lora_magnitude_vector")
            v = (m / torch.linalg.norm(v, dim=1))[:, None] * v
        p[path + ".weight"] = v.T.contiguous() if fifo else v
    # biases trained with bias="all" / "lora_only" and modules_to_save copies replace base tensors
    for k, v in tensors.items():
        if k in used:
            continue
        if not k.startswith(PREFIX):
            raise ValueError(f"tensor {k!r} lacks the {PREFIX!r} prefix")
        name = k[len(PREFIX):].replace(".base_layer.", ".")
        if name in params and params[name].shape == v.shape:
            p[name] = v
            used.add(k)
    unused = sorted(set(tensors) - used)
    if strict and unused:
        raise ValueError(f"adapter tensors used by no module: {unused[:5]}")
    return p


# --------------------------------------------------------------------------------------------
# (a) PEFT-layout fixtures for peft4j to load
# --------------------------------------------------------------------------------------------
PEFT_013_KEYS = {  # the keys PEFT 0.13 writes for LoRA that the cases below do not set
    "alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": None, "bias": "none",
    "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True, "layer_replication": None,
    "layers_pattern": None, "layers_to_transform": None, "loftq_config": {}, "lora_alpha": 8,
    "lora_dropout": 0.0, "megatron_config": None, "megatron_core": "megatron.core", "modules_to_save": None,
    "peft_type": "LORA", "r": 8, "rank_pattern": {}, "revision": None, "target_modules": None,
    "task_type": None, "use_dora": False, "use_rslora": False,
}

CASES = [
    # name, base fixture, adapter config (PEFT keys), output compared, whether to set biases
    ("bert-qv", "bert-tiny", {"r": 4, "lora_alpha": 8, "target_modules": ["query", "value"],
                              "task_type": "FEATURE_EXTRACTION", "base_model_name_or_path": "bert-tiny"}),
    ("bert-dora-rslora", "bert-tiny", {"r": 4, "lora_alpha": 6, "use_dora": True, "use_rslora": True,
                                       "target_modules": ".*\\.(query|key|value|dense)",
                                       "rank_pattern": {"value": 2}, "alpha_pattern": {"query": 16}}),
    ("bert-embedding-bias", "bert-tiny", {"r": 3, "lora_alpha": 3, "bias": "all",
                                          "target_modules": ["word_embeddings", "intermediate.dense"]}),
    ("gpt2-conv1d", "decoders/gpt2", {"r": 4, "lora_alpha": 16, "fan_in_fan_out": True,
                                      "target_modules": ["c_attn", "c_proj", "c_fc", "wte"],
                                      "task_type": "CAUSAL_LM"}),
    ("llama-layers", "decoders/llama-gqa", {"r": 2, "lora_alpha": 4, "layers_to_transform": [1],
                                            "layers_pattern": "layers",
                                            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                               "up_proj", "down_proj"], "task_type": "CAUSAL_LM"}),
    ("mistral-modules-to-save", "decoders/mistral", {"r": 4, "lora_alpha": 4, "target_modules": ["q_proj", "v_proj"],
                                                     "modules_to_save": ["lm_head"], "task_type": "CAUSAL_LM"}),
    ("llama-dora-lora-only", "decoders/llama-gqa", {"r": 3, "lora_alpha": 6, "use_dora": True, "bias": "lora_only",
                                                    "target_modules": ["q_proj", "v_proj", "o_proj"]}),
]


def make_tensors(family, params, c, g):
    """Random adapter tensors (B non-zero, as after training) for every target, in PEFT layout."""
    mods, _ = modules_of(family, params)
    out = {}
    for path in sorted(mods):
        if not target_matches(c, path):
            continue
        kind, fifo = mods[path]
        r = pattern_value(c.get("rank_pattern"), path, c["r"])
        w = params[path + ".weight"]
        pre = PREFIX + path
        if kind == "embedding":
            vocab, dim = w.shape
            out[pre + ".lora_embedding_A"] = torch.randn(r, vocab, generator=g) * 0.3
            out[pre + ".lora_embedding_B"] = torch.randn(dim, r, generator=g) * 0.3
            continue
        o, i = (w.shape[1], w.shape[0]) if fifo else w.shape
        out[pre + ".lora_A.weight"] = torch.randn(r, i, generator=g) * 0.3
        out[pre + ".lora_B.weight"] = torch.randn(o, r, generator=g) * 0.3
        if c.get("use_dora"):
            w_oi = w.T if fifo else w
            out[pre + ".lora_magnitude_vector"] = torch.linalg.norm(w_oi, dim=1) * (1 + 0.2 * torch.randn(o, generator=g))
        if c.get("bias") == "lora_only" and path + ".bias" in params:
            out[pre + ".base_layer.bias"] = params[path + ".bias"] + 0.1 * torch.randn(o, generator=g)
    for m in c.get("modules_to_save") or []:
        # a trained copy of the module, saved under the module's own path (current PEFT)
        for k, v in params.items():
            path = k.rsplit(".", 1)[0]
            if path.endswith(m):
                out[PREFIX + k] = v + 0.1 * torch.randn(v.shape, generator=g)
    if c.get("bias") == "all":
        for k, v in params.items():
            if k.endswith(".bias"):
                path = k[: -len(".bias")]
                # a LoRA-wrapped layer's bias lives in its base_layer, as in PEFT's state dict
                key = PREFIX + path + (".base_layer.bias" if path in mods and target_matches(c, path) else ".bias")
                out[key] = v + 0.1 * torch.randn(v.shape, generator=g)
    return out


def reference_inputs(fixture):
    ref = mdf.read_safetensors(os.path.join(CORE_FIXTURES, fixture, "reference.safetensors"))
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if "token_type_ids" in ref else [])
    return {k: torch.from_numpy(np.array(ref[k], dtype=np.int64)) for k in names}


def make():
    os.makedirs(LORA_FIXTURES, exist_ok=True)
    for i, (name, fixture, overrides) in enumerate(CASES):
        family, mcfg, params = load_base(fixture)
        c = dict(PEFT_013_KEYS)
        c.update(overrides)
        g = torch.Generator().manual_seed(9000 + i)
        tensors = make_tensors(family, params, c, g)
        eff = apply_adapter(family, params, c, tensors)
        inputs = reference_inputs(fixture)
        out = forward(family, mcfg, eff, inputs)
        base_out = forward(family, mcfg, params, inputs)
        case_dir = os.path.join(LORA_FIXTURES, name)
        adapter_dir = os.path.join(case_dir, "adapter")
        os.makedirs(adapter_dir, exist_ok=True)
        with open(os.path.join(adapter_dir, "adapter_config.json"), "w") as f:
            f.write(json.dumps(c, indent=2, sort_keys=True))  # PeftConfigMixin.save_pretrained writes no newline
        mdf.write_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"),
                              {k: v.to(torch.float32) for k, v in tensors.items()}, {"format": "pt"})
        expected = dict(inputs)
        expected["output"] = out.to(torch.float32)
        mdf.write_safetensors(os.path.join(case_dir, "expected.safetensors"), expected)
        meta = {"base_fixture": fixture, "family": family,
                "output": "last_hidden_state" if family == "bert" else "logits",
                "compare": "all positions" if family == "bert" else "positions where attention_mask == 1",
                "max_abs_change_vs_base": float((out - base_out).abs().max()),
                "computed_in": ("weights combined in float64; forward in "
                                + ("float32" if family == "llama" else "float64") + ", torch " + torch.__version__), "seed": 9000 + i}
        mdf.write_json(os.path.join(case_dir, "case.json"), meta)
        print(f"{name}: {len(tensors)} tensors, output {tuple(out.shape)}, "
              f"max |adapter - base| = {meta['max_abs_change_vs_base']:.4f}")


# --------------------------------------------------------------------------------------------
# (b) folders peft4j saved
# --------------------------------------------------------------------------------------------
def check(root, tol):
    cases = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "case.json")))
    if not cases:
        print(f"no case folders (with case.json) under {root}")
        return 1
    worst = 0.0
    failed = False
    for name in cases:
        case_dir = os.path.join(root, name)
        with open(os.path.join(case_dir, "case.json")) as f:
            meta = json.load(f)
        family, mcfg, params = load_base(meta["base_fixture"])
        io = mdf.read_safetensors(os.path.join(case_dir, "io.safetensors"))
        inputs = {k: torch.from_numpy(np.array(io[k], dtype=np.int64))
                  for k in ("input_ids", "attention_mask", "token_type_ids") if k in io}
        mask = inputs["attention_mask"].bool()
        for adapter, sub in meta["adapters"].items():
            c, tensors = read_adapter(os.path.join(case_dir, sub))
            eff = apply_adapter(family, params, c, tensors)
            ref = forward(family, mcfg, eff, inputs)
            got = torch.from_numpy(np.array(io["output." + adapter], dtype=np.float64))
            diff = (ref - got).abs()
            if family != "bert":
                diff = diff[mask]
            err = float(diff.max())
            worst = max(worst, err)
            ok = err <= tol
            failed |= not ok
            print(f"{name}/{adapter}: {len(tensors)} tensors, max |python - peft4j| = {err:.3e} "
                  f"({'ok' if ok else 'FAIL'}, tol {tol:g})")
    print(f"worst max abs error: {worst:.3e}")
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("make", help="write PEFT-layout adapter fixtures with expected outputs")
    ck = sub.add_parser("check", help="check adapter folders peft4j saved")
    ck.add_argument("root", help="folder whose sub-folders hold case.json, io.safetensors and adapters")
    ck.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    if args.cmd == "make":
        make()
        return 0
    return check(args.root, args.tol)


if __name__ == "__main__":
    sys.exit(main())

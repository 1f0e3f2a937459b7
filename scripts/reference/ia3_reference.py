#!/usr/bin/env python3
"""Independent reference for peft4j's IA3: PEFT's IA3 math and adapter-folder layout, re-implemented
in plain PyTorch (Debian has no `peft` package).

What is implemented here (huggingface/peft `tuners/ia3/{config,layer,model}.py`,
`utils/constants.py`, `utils/save_and_load.py`; facts in shared/REFERENCE.md section 5):

* adapter folder: `adapter_config.json` (json.dumps(indent=2, sort_keys=True)) and
  `adapter_model.safetensors` with one key per target, `base_model.model.<module>.ia3_l`
  (the adapter name removed, no `.weight`);
* a target listed in `feedforward_modules` (list: PEFT's plain `key.endswith(entry)`, so in BERT
  `attention.output.dense` is feed-forward too; string: re.fullmatch) scales its INPUT,
  l has shape [1, in] and y = W(x * l) + b; any other target scales its OUTPUT, bias included,
  l has shape [out, 1] and y = (Wx + b) * l;
* PEFT's defaults when target_modules / feedforward_modules are None: bert key, value, output.dense
  (ff output.dense); gpt2 c_attn, mlp.c_proj (ff mlp.c_proj, fan_in_fan_out); llama / mistral
  k_proj, v_proj, down_proj (ff down_proj); qwen2 q_proj, v_proj, down_proj (ff down_proj);
* the effect in weight form (identical to the unmerged forward): feed-forward W' = W * l (columns
  of the [out, in] matrix), otherwise W' = l * W (rows) and b' = l * b. GPT-2's Conv1D stores W
  as [in, out] (transposed).

The base models and their forwards are those of lora_reference.py / make_decoder_fixtures.py
(imported). Adapters are combined with the weights in float64.

Usage (Debian's torch: /usr/bin/python3):

  /usr/bin/python3 scripts/reference/ia3_reference.py make
      writes PEFT-layout IA3 folders with expected outputs to
      peft-adapter/src/test/resources/fixtures/ia3/<case>/ (adapter/, expected.safetensors,
      case.json); peft4j's Ia3PythonFixturesTest loads them.

  /usr/bin/python3 scripts/reference/ia3_reference.py check peft-adapter/target/ia3-interop
      checks folders peft4j saved (Ia3InteropExportTest writes them with case.json and
      io.safetensors holding the inputs and peft4j's outputs); exit status 1 if any max abs error
      exceeds --tol (default 1e-4).
"""
import argparse
import json
import os
import re
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lora_reference as lr  # noqa: E402  (base fixtures, forwards, PEFT target matching)
import make_decoder_fixtures as mdf  # noqa: E402  (safetensors I/O)

IA3_FIXTURES = os.path.join(lr.ROOT, "peft-adapter", "src", "test", "resources", "fixtures", "ia3")
PREFIX = lr.PREFIX

DEFAULTS = {  # PEFT's TRANSFORMERS_MODELS_TO_IA3_{TARGET,FEEDFORWARD}_MODULES_MAPPING for these families
    "bert": (["key", "value", "output.dense"], ["output.dense"]),
    "gpt2": (["c_attn", "mlp.c_proj"], ["mlp.c_proj"]),
    "llama": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "mistral": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "qwen2": (["q_proj", "v_proj", "down_proj"], ["down_proj"]),
}

PEFT_KEYS = {  # the keys PEFT writes for IA3
    "auto_mapping": None, "base_model_name_or_path": None, "exclude_modules": None, "fan_in_fan_out": False,
    "feedforward_modules": None, "inference_mode": True, "init_ia3_weights": True, "modules_to_save": None,
    "peft_type": "IA3", "revision": None, "target_modules": None, "task_type": None,
}

CASES = [
    ("bert-default", "bert-tiny", {"task_type": "FEATURE_EXTRACTION"}),
    ("bert-regex", "bert-tiny", {"target_modules": ".*\\.(query|intermediate\\.dense|output\\.dense)",
                                 "feedforward_modules": ".*\\.layer\\.\\d+\\.output\\.dense"}),
    ("gpt2-default", "decoders/gpt2", {"task_type": "CAUSAL_LM"}),
    ("llama-default", "decoders/llama-gqa", {"task_type": "CAUSAL_LM"}),
    ("qwen2-default", "decoders/qwen2", {"task_type": "CAUSAL_LM"}),
    ("mistral-mlp", "decoders/mistral", {"target_modules": ["q_proj", "o_proj", "gate_proj", "up_proj"],
                                         "feedforward_modules": ["gate_proj", "up_proj"]}),
]


def resolved(family, c, model_type):
    c = dict(c)
    t, f = DEFAULTS[model_type if model_type in DEFAULTS else family]
    if c.get("target_modules") is None:
        c["target_modules"] = list(t)
    if c.get("feedforward_modules") is None:
        c["feedforward_modules"] = list(f)
    if family == "gpt2":
        c["fan_in_fan_out"] = True
    return c


def is_feedforward(c, key):
    ff = c["feedforward_modules"]
    if isinstance(ff, str):
        return re.fullmatch(ff, key) is not None
    return any(key.endswith(e) for e in ff)


def targets_of(family, params, c):
    mods, _ = lr.modules_of(family, params)
    out = []
    for path in sorted(mods):
        if lr.target_matches(dict(c, layers_to_transform=None, layers_pattern=None), path):
            kind, fifo = mods[path]
            if kind != "linear":
                raise ValueError(f"IA3 target {path} is not a linear layer")
            out.append((path, fifo))
    if not out:
        raise ValueError(f"target_modules {c['target_modules']} match no module")
    return out


def apply_adapter(family, params, c, tensors):
    """Effective parameters of base + IA3 adapter; every tensor must be used, with PEFT's shape."""
    p = dict(params)
    used = set()
    for path, fifo in targets_of(family, params, c):
        key = PREFIX + path + ".ia3_l"
        l = tensors[key]
        used.add(key)
        w = params[path + ".weight"]
        w_oi = w.T if fifo else w                          # [out, in]
        o, i = w_oi.shape
        if is_feedforward(c, path):
            assert tuple(l.shape) == (1, i), (path, tuple(l.shape), (1, i))
            v = w_oi * l                                   # columns: y = W(x * l) + b
        else:
            assert tuple(l.shape) == (o, 1), (path, tuple(l.shape), (o, 1))
            v = w_oi * l                                   # rows: y = (Wx + b) * l
            if path + ".bias" in params:
                p[path + ".bias"] = params[path + ".bias"] * l.reshape(-1)
        p[path + ".weight"] = v.T.contiguous() if fifo else v
    unused = sorted(set(tensors) - used)
    if unused:
        raise ValueError(f"adapter tensors used by no module: {unused[:5]}")
    return p


def read_adapter(folder):
    with open(os.path.join(folder, "adapter_config.json")) as f:
        c = json.load(f)
    if c.get("peft_type") != "IA3":
        raise ValueError(f"{folder}: peft_type {c.get('peft_type')!r} is not IA3")
    raw = mdf.read_safetensors(os.path.join(folder, "adapter_model.safetensors"))
    return c, {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in raw.items()}


def make():
    os.makedirs(IA3_FIXTURES, exist_ok=True)
    for n, (name, fixture, overrides) in enumerate(CASES):
        family, mcfg, params = lr.load_base(fixture)
        c = dict(PEFT_KEYS)
        c.update(overrides)
        c = resolved(family, c, mcfg["model_type"])          # PEFT stores the resolved defaults in the saved config
        g = torch.Generator().manual_seed(9100 + n)
        tensors = {}
        for path, fifo in targets_of(family, params, c):
            w = params[path + ".weight"]
            o, i = (w.shape[1], w.shape[0]) if fifo else w.shape
            shape = (1, i) if is_feedforward(c, path) else (o, 1)
            tensors[PREFIX + path + ".ia3_l"] = 1.0 + 0.4 * torch.randn(shape, generator=g)
        eff = apply_adapter(family, params, c, tensors)
        inputs = lr.reference_inputs(fixture)
        out = lr.forward(family, mcfg, eff, inputs)
        base_out = lr.forward(family, mcfg, params, inputs)
        case_dir = os.path.join(IA3_FIXTURES, name)
        adapter_dir = os.path.join(case_dir, "adapter")
        os.makedirs(adapter_dir, exist_ok=True)
        with open(os.path.join(adapter_dir, "adapter_config.json"), "w") as f:
            f.write(json.dumps(c, indent=2, sort_keys=True))
        mdf.write_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"),
                              {k: v.to(torch.float32) for k, v in tensors.items()}, {"format": "pt"})
        expected = dict(inputs)
        expected["output"] = out.to(torch.float32)
        mdf.write_safetensors(os.path.join(case_dir, "expected.safetensors"), expected)
        meta = {"base_fixture": fixture, "family": family,
                "output": "last_hidden_state" if family == "bert" else "logits",
                "ia3_feedforward": sorted(p for p, _ in targets_of(family, params, c) if is_feedforward(c, p)),
                "max_abs_change_vs_base": float((out - base_out).abs().max()), "seed": 9100 + n,
                "computed_in": "weights combined in float64, torch " + torch.__version__}
        mdf.write_json(os.path.join(case_dir, "case.json"), meta)
        print(f"{name}: {len(tensors)} vectors ({len(meta['ia3_feedforward'])} feed-forward), "
              f"max |adapter - base| = {meta['max_abs_change_vs_base']:.4f}")


def check(root, tol):
    cases = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "case.json")))
    if not cases:
        print(f"no case folders (with case.json) under {root}")
        return 1
    failed = False
    worst = 0.0
    for name in cases:
        case_dir = os.path.join(root, name)
        with open(os.path.join(case_dir, "case.json")) as f:
            meta = json.load(f)
        family, mcfg, params = lr.load_base(meta["base_fixture"])
        io = mdf.read_safetensors(os.path.join(case_dir, "io.safetensors"))
        inputs = {k: torch.from_numpy(np.array(io[k], dtype=np.int64))
                  for k in ("input_ids", "attention_mask", "token_type_ids") if k in io}
        mask = inputs["attention_mask"].bool()
        for adapter, sub in meta["adapters"].items():
            c, tensors = read_adapter(os.path.join(case_dir, sub))
            ref = lr.forward(family, mcfg, apply_adapter(family, params, c, tensors), inputs)
            got = torch.from_numpy(np.array(io["output." + adapter], dtype=np.float64))
            diff = (ref - got).abs()
            if family != "bert":
                diff = diff[mask]
            err = float(diff.max())
            worst = max(worst, err)
            ok = err <= tol
            failed |= not ok
            print(f"{name}/{adapter}: {len(tensors)} vectors, max |python - peft4j| = {err:.3e} "
                  f"({'ok' if ok else 'FAIL'}, tol {tol:g})")
    print(f"worst max abs error: {worst:.3e}")
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("make")
    ck = sub.add_parser("check")
    ck.add_argument("root")
    ck.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    if args.cmd == "make":
        make()
        return 0
    return check(args.root, args.tol)


if __name__ == "__main__":
    sys.exit(main())

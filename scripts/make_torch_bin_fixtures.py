#!/usr/bin/python3
"""Writes the PyTorch `.bin` fixtures that peft4j's restricted unpickler (TorchBinFile) is tested on.

Run with Debian's interpreter, which sees Debian's torch (apt-get install python3-torch):

  /usr/bin/python3 scripts/make_torch_bin_fixtures.py [OUT_DIR]
      (default OUT_DIR: peft-core/src/test/resources/io/torch)

Files written (all by torch.save itself, the zip format of torch >= 1.6):
  state_dict.bin        an OrderedDict state dict of a small nn.Module (with its `_metadata`) plus
                        one tensor of every supported dtype (F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL),
                        two tensors sharing one storage, a transposed (non-contiguous) tensor, a
                        slice with a storage offset, a 0-d tensor, an empty tensor and an
                        nn.Parameter (_rebuild_parameter).
  state_dict.json       what the Java reader must produce for each key: dtype, shape and the
                        values in row-major order (floats as the bit patterns of the value widened
                        to float32, so NaN / -0.0 compare exactly; integers as integers).
  evil_os_system.bin    a torch.save'd object whose pickle calls os.system on load: the reader must
                        refuse it, naming the global, without running anything.
  evil_eval.bin         the same with builtins.eval.
  bert-tiny-bin/        the bert-tiny test checkpoint (fixtures/bert-tiny) as pytorch_model.bin
  bert-tiny-sharded/    ... and as two shards + pytorch_model.bin.index.json
  peft-lora/src/test/resources/fixtures/lora/bert-qv-bin/adapter/
                        the bert-qv LoRA adapter (PEFT layout) as PEFT's legacy adapter_model.bin
The safetensors of bert-tiny is parsed here with struct/json/numpy (not by peft4j).
"""
import collections
import json
import os
import struct
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "peft-core/src/test/resources/io/torch"
BERT_TINY = ROOT / "peft-core/src/test/resources/fixtures/bert-tiny"

DTYPE_NAME = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
              torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
              torch.uint8: "U8", torch.bool: "BOOL"}


def expected(t):
    t = t.detach()
    name = DTYPE_NAME[t.dtype]
    flat = t.contiguous().reshape(-1)
    if t.dtype in (torch.float32, torch.float16, torch.bfloat16):
        bits = flat.to(torch.float32).numpy().view(np.uint32).tolist()
        return {"dtype": name, "shape": list(t.shape), "f32_bits": bits}
    if t.dtype == torch.float64:
        return {"dtype": name, "shape": list(t.shape), "f64": flat.numpy().tolist()}
    return {"dtype": name, "shape": list(t.shape), "ints": [int(v) for v in flat.to(torch.int64).tolist()]}


class TwoLayer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = torch.nn.Linear(3, 2)
        self.norm = torch.nn.LayerNorm(2)


def state_dict_fixture():
    torch.manual_seed(7)
    sd = TwoLayer().state_dict()  # an OrderedDict carrying `_metadata`
    g = torch.Generator().manual_seed(11)
    sd["f32"] = torch.randn(2, 3, generator=g)
    sd["f16"] = torch.randn(4, generator=g).to(torch.float16)
    sd["bf16"] = torch.randn(2, 2, generator=g).to(torch.bfloat16)
    sd["f64"] = torch.randn(3, generator=g).to(torch.float64)
    sd["i64"] = torch.tensor([-(2 ** 40), -1, 0, 2 ** 40 + 3], dtype=torch.int64)
    sd["i32"] = torch.tensor([[-7, 8], [2 ** 30, -(2 ** 31)]], dtype=torch.int32)
    sd["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127, 0], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 200, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["special"] = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0])
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    sd["shared.row1"] = base[1]          # storage offset 6, shares base's storage
    sd["shared.all"] = base              # the whole storage
    sd["shared.col_slice"] = base[:, 2:5]  # offset 2, strides (6, 1): non-contiguous
    sd["transposed"] = torch.arange(6, dtype=torch.float32).reshape(2, 3).t()  # strides (1, 3)
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 4)
    sd["param"] = torch.nn.Parameter(torch.tensor([[1.0, -2.0]]))
    torch.save(sd, OUT / "state_dict.bin")
    with open(OUT / "state_dict.json", "w") as f:
        json.dump({k: expected(v) for k, v in sd.items()}, f, indent=1, sort_keys=True)
        f.write("\n")


class Evil:
    """On unpickling, calls `func(arg)`: what a malicious checkpoint does in Python."""

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


def evil_fixtures():
    marker = "/tmp/peft4j-pwned"
    torch.save(collections.OrderedDict(weight=torch.zeros(2), payload=Evil(os.system, "touch " + marker)),
               OUT / "evil_os_system.bin")
    torch.save({"payload": Evil(eval, "__import__('os').system('touch %s')" % marker)}, OUT / "evil_eval.bin")


def read_safetensors(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    np_type = {"F32": "<f4", "I64": "<i8", "F16": "<f2"}  # the dtypes of the fixtures converted here
    out = collections.OrderedDict()
    for key in sorted(header):
        info = header[key]
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[8 + n + b:8 + n + e], dtype=np_type[info["dtype"]]).reshape(info["shape"])
        out[key] = torch.from_numpy(arr.copy())
    return out


def bert_tiny_fixtures():
    sd = read_safetensors(BERT_TINY / "model.safetensors")
    config = (BERT_TINY / "config.json").read_text()
    single = OUT / "bert-tiny-bin"
    single.mkdir(parents=True, exist_ok=True)
    (single / "config.json").write_text(config)
    torch.save(sd, single / "pytorch_model.bin")

    sharded = OUT / "bert-tiny-sharded"
    sharded.mkdir(parents=True, exist_ok=True)
    (sharded / "config.json").write_text(config)
    keys = list(sd)
    halves = [keys[:len(keys) // 2], keys[len(keys) // 2:]]
    weight_map = {}
    total = 0
    for i, part in enumerate(halves):
        name = "pytorch_model-%05d-of-%05d.bin" % (i + 1, len(halves))
        torch.save(collections.OrderedDict((k, sd[k]) for k in part), sharded / name)
        for k in part:
            weight_map[k] = name
            total += sd[k].numel() * sd[k].element_size()
    with open(sharded / "pytorch_model.bin.index.json", "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
        f.write("\n")


def lora_bin_fixture():
    src = ROOT / "peft-lora/src/test/resources/fixtures/lora/bert-qv/adapter"
    dst = ROOT / "peft-lora/src/test/resources/fixtures/lora/bert-qv-bin/adapter"
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "adapter_config.json").write_text((src / "adapter_config.json").read_text())
    torch.save(read_safetensors(src / "adapter_model.safetensors"), dst / "adapter_model.bin")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    state_dict_fixture()
    evil_fixtures()
    bert_tiny_fixtures()
    lora_bin_fixture()
    print("wrote", OUT, "with torch", torch.__version__)

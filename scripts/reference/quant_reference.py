#!/usr/bin/env python3
"""Independent numpy reference of bitsandbytes' weight quantization, for peft4j's peft-quant tests.

bitsandbytes cannot be installed here, so its algorithms are re-implemented below in plain numpy
from its published sources (bitsandbytes-foundation/bitsandbytes: `functional.py`
`quantize_4bit` / `quantize_blockwise` / `create_dynamic_map` / `QuantState.as_dict`, the CPU and
default backends `backends/default/ops.py` and `backends/cpu/ops.py`, and `csrc/common.cpp`
`quantize_block`). Every step is done in float32 exactly as those sources do it:

4-bit (NF4 / FP4), the reference ("default", used on CPU) kernel `quantize_4bit`:
  * flatten; blocks of `blocksize` values (the last block may be partial);
  * absmax[b] = max |x| over the block (fp32);
  * scaled = clamp(x * (1 / absmax[b]), -1, 1), i.e. a float32 reciprocal then a float32 product;
  * code = argmin_k |scaled - CODE[k]| in float32, the FIRST index on ties (torch.argmin);
    NaN (a block whose absmax is 0: 0 * inf) gives index 0, as torch.argmin returns a NaN's index;
  * an odd number of values is padded with one 0.0 before packing;
  * packed byte i = code[2i] << 4 | code[2i + 1]  (the first value in the high nibble).
  CODE is the 16-entry table of `get_4bit_type`: NF4 as listed below, FP4 = the values
  [0, 0.0625, 8, 12, 4, 6, 2, 3, -0, -0.0625, -8, -12, -4, -6, -2, -3] divided by 12 in float32.
  (bitsandbytes' CPU default path searches FP4 in a 4-decimal rounded copy of that table and its
  CUDA kernel decides by hard-coded midpoints keeping the sign bit of values that round to zero;
  both agree with this rule except for values within ~1e-4 of an FP4 midpoint, or -0 vs +0.)
  dequantized = CODE[code] * absmax[b] (float32).

Double quantization (`compress_statistics=True`):
  * offset = mean(absmax) in float32 (computed here as the float64 sequential sum / n, rounded
    to float32; torch's float32 cascade sum can differ in the last bit);
  * centered = absmax - offset (float32);
  * 8-bit blockwise quantization of `centered` in blocks of 256 with the signed dynamic map,
    as `quantize_block` in csrc/common.cpp (the CPU kernel): block absmax2 = max |v|,
    normed = v / absmax2 (a float32 division here), binary search for the left neighbour, then
    the right one only if strictly closer (ties keep the lower index). The CPU kernel first sets
    code[0] = -1.0 (the map's minimum is -0.99297...), so the stored nested map has -1.0 there.
  * a block's scale = code8[q] * absmax2[b // 256] + offset (float32 each step).

The signed dynamic map (`create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)`):
  for i in 0..6: boundaries = torch.linspace(0.1, 1, 2**i + 1) (float32), means = midpoints
  ((b[:-1] + b[1:]) / 2, float32), values = float32(10**(i-6)) * means and their negatives;
  plus 0 and 1.0; sorted. torch's CPU linspace is emulated bit for bit (its AVX2 kernel: a fused
  multiply-add for scalar elements and for each 8-lane vector's base, then base + j*step per
  lane); when torch is importable the script checks the emulation against torch.linspace.

int8 (LLM.int8 weights, `int8_vectorwise_quant` of the default backend):
  * with a threshold > 0, elements with |x| >= threshold are outliers; their columns are the
    outlier columns; the outlier elements are zeroed before the row statistics;
  * SCB[r] = max |x| over row r (fp32);
  * q = round_half_even(x * (reciprocal(SCB[r]) * 127)) as int8 (torch evaluates 127.0 / t as
    t.reciprocal() * 127.0); outlier columns are then zeroed in q (when there is more than 1 row);
  * peft4j keeps the outlier columns' original values in float32 next to q.
  dequantized = q * SCB[r] * float32(1/127) (float32 each step), outlier columns restored.

When torch is importable (Debian's python3-torch), the script also re-runs the 4-bit and int8 steps
written with torch ops exactly as bitsandbytes' default backend writes them (torch.argmin,
`1 / absmax`, `127.0 / row_stats`, torch.round) and requires bit-identical codes and scales.

The output is deterministic (fixed seeds). Run with Debian's numpy:
    /usr/bin/python3 scripts/reference/quant_reference.py
It writes peft-quant/src/test/resources/fixtures/quant/{reference.safetensors,cases.json}.
"""
import json
import os
import struct
import sys

import numpy as np

f32 = np.float32
f64 = np.float64

NF4 = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0], dtype=f32)

_FP4_RAW = np.array([0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0,
                     -0.0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0], dtype=f32)
FP4 = (_FP4_RAW / np.abs(_FP4_RAW).max()).astype(f32)

CODES = {"nf4": NF4, "fp4": FP4}


# ---------------------------------------------------------------------------------------------
# the dynamic 8-bit map

def _fma32(a, b, c):
    """float32(a*b + c) with one rounding (the product of two float32 values is exact in float64,
    and adding c there rounds at most once more far below float32 precision)."""
    return f32(f64(f32(a)) * f64(f32(b)) + f64(f32(c)))


def torch_linspace_f32(start, end, steps):
    """torch.linspace(start, end, steps) for float32 on an AVX2 CPU build, bit for bit."""
    s = f32(start)
    e = f32(end)
    if steps == 1:
        return np.array([s], dtype=f32)
    step = f32((e - s) / f32(steps - 1))
    half = steps // 2
    out = np.empty(steps, dtype=f32)

    def scalar(i):
        if i < half:
            return _fma32(step, f32(i), s)
        return _fma32(-step, f32(steps - i - 1), e)

    vec = 8
    i = 0
    while i <= steps - 2 * vec:          # two 8-lane vectors per iteration
        for v in range(2):
            base = scalar(i + v * vec)
            for j in range(vec):
                out[i + v * vec + j] = f32(base + f32(f32(j) * step))
        i += 2 * vec
    for k in range(i, steps):            # the scalar tail
        out[k] = scalar(k)
    return out


def dynamic_map_signed():
    data = []
    max_exponent_bits = 7
    non_sign_bits = 7
    for i in range(max_exponent_bits):
        items = 2 ** (i + non_sign_bits - max_exponent_bits) + 1
        b = torch_linspace_f32(0.1, 1.0, items)
        means = ((b[:-1] + b[1:]) / f32(2.0)).astype(f32)
        scale = f32(10.0 ** (-(max_exponent_bits - 1) + i))
        data += [float(v) for v in (scale * means).astype(f32)]
        data += [float(v) for v in (-(scale * means)).astype(f32)]
    data.append(0.0)
    data.append(1.0)
    assert len(data) == 256
    data.sort()
    return np.array(data, dtype=f32)


def check_dynamic_map_against_torch(code):
    try:
        import torch
    except ImportError:
        print("torch not importable: dynamic map emulation not cross-checked")
        return
    data = []
    for i in range(7):
        b = torch.linspace(0.1, 1, 2 ** i + 1)
        means = (b[:-1] + b[1:]) / 2.0
        data += ((10 ** (-6 + i)) * means).tolist()
        data += (-(10 ** (-6 + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    data.sort()
    t = torch.tensor(data, dtype=torch.float32).numpy()
    if not np.array_equal(t.view(np.uint32), code.view(np.uint32)):
        bad = np.nonzero(t != code)[0]
        sys.exit(f"dynamic map emulation differs from torch at {bad[:8]}: {t[bad[:4]]} vs {code[bad[:4]]}")
    print(f"dynamic map matches torch {torch.__version__} bit for bit")


DYNAMIC = dynamic_map_signed()
DYNAMIC_CPU = DYNAMIC.copy()
DYNAMIC_CPU[0] = f32(-1.0)   # what the CPU kernel writes into the map before searching it


# ---------------------------------------------------------------------------------------------
# 4-bit

def nearest_first(scaled, code):
    """argmin_k |scaled - code[k]| in float32, first index on ties, NaN -> 0 (torch.argmin)."""
    d = np.abs(scaled[:, None].astype(f32) - code[None, :].astype(f32)).astype(f32)
    idx = np.argmin(d, axis=1)          # numpy also returns the first minimum
    idx[np.isnan(scaled)] = 0
    return idx.astype(np.uint8)


def quantize_4bit(a, blocksize, quant_type):
    x = np.ascontiguousarray(a, dtype=f32).reshape(-1)
    n = x.size
    blocks = -(-n // blocksize)
    absmax = np.empty(blocks, dtype=f32)
    scaled = np.empty(n, dtype=f32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for b in range(blocks):
            blk = x[b * blocksize:(b + 1) * blocksize]
            m = f32(np.max(np.abs(blk)))
            absmax[b] = m
            inv = f32(f32(1.0) / m)
            scaled[b * blocksize:(b + 1) * blocksize] = np.clip((blk * inv).astype(f32), f32(-1.0), f32(1.0))
    if n % 2:
        scaled = np.concatenate([scaled, np.zeros(1, dtype=f32)])
    q = nearest_first(scaled, CODES[quant_type])
    packed = ((q[0::2] << 4) | q[1::2]).astype(np.uint8)
    return packed, absmax


def unpack_4bit(packed, n):
    q = np.empty(packed.size * 2, dtype=np.uint8)
    q[0::2] = packed >> 4
    q[1::2] = packed & 0x0F
    return q[:n]


def dequantize_4bit(packed, absmax, n, blocksize, quant_type):
    q = unpack_4bit(packed, n)
    scale = np.repeat(absmax, blocksize)[:n]
    return (CODES[quant_type][q] * scale).astype(f32)


# ---------------------------------------------------------------------------------------------
# 8-bit blockwise (the CPU kernel quantize_block), used for the nested statistics

def quantize_blockwise_8bit_cpu(v, blocksize=256):
    code = DYNAMIC_CPU
    v = np.ascontiguousarray(v, dtype=f32)
    n = v.size
    blocks = -(-n // blocksize)
    absmax = np.empty(blocks, dtype=f32)
    out = np.empty(n, dtype=np.uint8)
    for b in range(blocks):
        blk = v[b * blocksize:(b + 1) * blocksize]
        m = f32(np.max(np.abs(blk)))
        absmax[b] = m
        for i, val in enumerate(blk):
            if m == 0:
                # 0/0: the C kernel's result is unspecified; peft4j stores the code nearest 0
                out[b * blocksize + i] = int(np.argmin(np.abs(code)))
                continue
            normed = f32(val / m)
            idx = int(np.searchsorted(code, normed, side="right")) - 1   # largest i with code[i] <= normed
            idx = min(max(idx, 0), 255)
            if idx < 255:
                dl = f32(abs(f32(normed - code[idx])))
                dr = f32(abs(f32(normed - code[idx + 1])))
                if dr < dl:
                    idx += 1
            out[b * blocksize + i] = idx
    return out, absmax


def mean_f32(a):
    # sequential float64 sum (np.cumsum is sequential), divided, rounded to float32
    return f32(np.cumsum(a.astype(f64))[-1] / a.size)


def double_quantize(absmax):
    offset = mean_f32(absmax)
    centered = (absmax - offset).astype(f32)
    q8, absmax2 = quantize_blockwise_8bit_cpu(centered, 256)
    return q8, absmax2, offset


def dequantize_absmax(q8, absmax2, offset):
    scale2 = np.repeat(absmax2, 256)[:q8.size]
    return ((DYNAMIC_CPU[q8] * scale2).astype(f32) + offset).astype(f32)


# ---------------------------------------------------------------------------------------------
# int8

def quantize_int8(a, threshold):
    w = np.array(a, dtype=f32, copy=True)
    rows = w.shape[0]
    outlier_cols = np.zeros(0, dtype=np.int64)
    if threshold > 0:
        outliers = np.abs(w) >= f32(threshold)
        if outliers.any():
            outlier_cols = np.nonzero(outliers.any(axis=0))[0].astype(np.int64)
            w[outliers] = 0
    scb = np.max(np.abs(w), axis=1).astype(f32)
    with np.errstate(divide="ignore", invalid="ignore"):
        mult = (f32(1.0) / scb).astype(f32) * f32(127.0)
        prod = (w * mult[:, None].astype(f32)).astype(f32)
        prod[~np.isfinite(prod)] = 0
    q = np.rint(prod).astype(np.int8)
    if rows > 1 and outlier_cols.size:
        q[:, outlier_cols] = 0
    kept = np.array(a, dtype=f32)[:, outlier_cols] if outlier_cols.size else np.zeros((rows, 0), dtype=f32)
    return q, scb, outlier_cols, kept


def dequantize_int8(q, scb, outlier_cols, kept):
    w = ((q.astype(f32) * scb[:, None]).astype(f32) * f32(7.874015718698502e-3)).astype(f32)
    if outlier_cols.size:
        w[:, outlier_cols] = kept
    return w


# ---------------------------------------------------------------------------------------------
# optional cross-check: the same 4-bit / int8 steps written with torch ops, literally as
# bitsandbytes' default backend writes them (so torch's own argmin, reciprocal and round decide)

def check_against_torch_ops(ins):
    try:
        import torch
    except ImportError:
        print("torch not importable: torch-op cross-check skipped")
        return
    for name, inp, qt, bs, dq in CASES:
        a = torch.from_numpy(np.ascontiguousarray(ins[inp], dtype=f32))
        if qt == "int8":
            thr = 6.0 if bs == 0 else 0.0
            A = a.clone()
            cols = None
            if thr > 0:
                outl = A.abs() >= thr
                if outl.any():
                    cols = torch.argwhere(outl.any(dim=0)).view(-1)
                    A[outl] = 0
            row = torch.max(A.abs(), dim=1).values.float()
            q = torch.round(A * (127.0 / row.unsqueeze(-1)))
            q = torch.nan_to_num(q, nan=0.0).to(torch.int8)
            if cols is not None:
                q[:, cols] = 0
            q_np, scb_np, _, _ = quantize_int8(ins[inp], thr)
            assert np.array_equal(q.numpy(), q_np), name + ": int8 codes differ from torch ops"
            assert np.array_equal(row.numpy(), scb_np), name + ": SCB differs from torch ops"
            continue
        n = a.numel()
        flat = a.reshape(n)
        full = n // bs
        rem = n % bs
        absmax = torch.zeros(full + (1 if rem else 0), dtype=torch.float32)
        blocks = flat[: n - rem].reshape(full, bs)
        absmax[:full] = torch.abs(blocks).max(dim=-1)[0]
        scaled = torch.clamp(blocks * (1 / absmax[:full].view(-1, 1)), -1, 1).reshape(-1)
        if rem:
            absmax[-1] = torch.abs(flat[-rem:]).max()
            scaled = torch.cat([scaled, torch.clamp(flat[-rem:] * (1 / absmax[-1]), -1, 1)], dim=0)
        code = torch.from_numpy(CODES[qt])
        if scaled.numel() % 2:
            scaled = torch.nn.functional.pad(scaled, (0, 1), value=0.0)
        q = torch.argmin(torch.abs(scaled.view(-1, 1) - code), dim=-1, keepdim=True).to(torch.uint8)
        packed = (q[::2] << 4 | q[1::2]).reshape(-1).numpy()
        p_np, a_np = quantize_4bit(ins[inp], bs, qt)
        assert np.array_equal(packed, p_np), name + ": packed codes differ from torch ops"
        assert np.array_equal(absmax.numpy(), a_np), name + ": absmax differs from torch ops"
    print("4-bit and int8 codes match the torch-op formulation bit for bit")


# ---------------------------------------------------------------------------------------------
# cases

def make_inputs():
    rng = np.random.default_rng(20240601)
    ins = {}
    ins["gauss_64x96"] = rng.standard_normal((64, 96)).astype(f32) * f32(0.02)
    ins["odd_33x47"] = rng.standard_normal((33, 47)).astype(f32)          # 1551 values: partial block, odd count
    z = rng.standard_normal((16, 64)).astype(f32)
    z[3] = 0.0                                                            # an all-zero block (block size 64)
    z[5, :10] = -0.0
    z[7, 0] = 1e-30                                                       # tiny values
    z[9, 5] = 80.0                                                        # a heavy outlier dominating its block
    z[11] = np.linspace(-1, 1, 64).astype(f32)
    ins["special_16x64"] = z
    # a dense sweep of [-1, 1] in one block of 4096 whose absmax is exactly 1
    sweep = np.linspace(-1, 1, 4096).astype(f32)
    sweep[0] = -1.0
    sweep[-1] = 1.0
    # every midpoint between neighbouring codes, rounded to float32, and its two float32 neighbours
    extra = []
    for code in (NF4, np.sort(FP4)):
        for a, b in zip(code[:-1], code[1:]):
            mid = f32((f64(a) + f64(b)) / 2)
            extra += [mid, np.nextafter(mid, f32(-2)), np.nextafter(mid, f32(2))]
    sweep[1:1 + len(extra)] = np.array(extra, dtype=f32)
    ins["sweep_4096"] = sweep.reshape(64, 64)
    ins["dq_300x128"] = (rng.standard_normal((300, 128)) * rng.uniform(0.2, 3.0, (300, 1))).astype(f32)
    w8 = rng.standard_normal((40, 70)).astype(f32)
    w8[4, 7] = 9.5
    w8[20, 7] = -7.0
    w8[31, 66] = 6.0                                                       # exactly at the threshold
    w8[12] = 0.0
    ins["int8_40x70"] = w8
    return ins


CASES = [
    # name, input, type, blocksize, double_quant
    ("nf4_gauss_b64", "gauss_64x96", "nf4", 64, False),
    ("fp4_gauss_b64", "gauss_64x96", "fp4", 64, False),
    ("nf4_gauss_b32", "gauss_64x96", "nf4", 32, False),
    ("nf4_odd_b128", "odd_33x47", "nf4", 128, False),
    ("fp4_odd_b256", "odd_33x47", "fp4", 256, False),
    ("nf4_special_b64", "special_16x64", "nf4", 64, False),
    ("fp4_special_b64", "special_16x64", "fp4", 64, False),
    ("nf4_sweep_b4096", "sweep_4096", "nf4", 4096, False),
    ("fp4_sweep_b4096", "sweep_4096", "fp4", 4096, False),
    ("nf4_dq_b64", "dq_300x128", "nf4", 64, True),
    ("fp4_dq_b128", "dq_300x128", "fp4", 128, True),
    ("nf4_dq_odd_b32", "odd_33x47", "nf4", 32, True),
    ("int8_t6", "int8_40x70", "int8", 0, False),
    ("int8_plain", "int8_40x70", "int8", -1, False),
]


_DT = {np.dtype(np.float32): "F32", np.dtype(np.uint8): "U8", np.dtype(np.int8): "I8",
       np.dtype(np.int64): "I64"}


def write_safetensors(path, tensors):
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DT[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out_dir = os.path.join(root, "peft-quant", "src", "test", "resources", "fixtures", "quant")
    os.makedirs(out_dir, exist_ok=True)
    check_dynamic_map_against_torch(DYNAMIC)

    ins = make_inputs()
    check_against_torch_ops(ins)
    t = {"code.nf4": NF4, "code.fp4": FP4, "code.dynamic": DYNAMIC, "code.dynamic_cpu": DYNAMIC_CPU}
    for k, v in ins.items():
        t["input." + k] = v
    cases = []
    for name, inp, qt, bs, dq in CASES:
        a = ins[inp]
        n = a.size
        entry = {"name": name, "input": inp, "type": qt, "shape": list(a.shape), "double_quant": dq}
        if qt == "int8":
            thr = 6.0 if bs == 0 else 0.0
            q, scb, cols, kept = quantize_int8(a, thr)
            deq = dequantize_int8(q, scb, cols, kept)
            t[name + ".weight"] = q
            t[name + ".SCB"] = scb
            t[name + ".outlier_cols"] = cols
            t[name + ".dequantized"] = deq
            entry["threshold"] = thr
            entry["outlier_cols"] = [int(c) for c in cols]
        else:
            packed, absmax = quantize_4bit(a, bs, qt)
            entry["blocksize"] = bs
            t[name + ".packed"] = packed
            t[name + ".absmax"] = absmax
            if dq:
                q8, absmax2, offset = double_quantize(absmax)
                scales = dequantize_absmax(q8, absmax2, offset)
                t[name + ".nested_codes"] = q8
                t[name + ".nested_absmax"] = absmax2
                t[name + ".nested_offset"] = np.array([offset], dtype=f32)
                t[name + ".scales"] = scales
                deq = dequantize_4bit(packed, scales, n, bs, qt)
            else:
                deq = dequantize_4bit(packed, absmax, n, bs, qt)
            t[name + ".dequantized"] = deq.reshape(a.shape)
            err = float(np.sqrt(np.mean((deq.reshape(-1) - a.reshape(-1).astype(f64)) ** 2)))
            entry["rmse"] = err
        cases.append(entry)
        print(f"{name:18s} {qt:4s} shape={list(a.shape)}")
    write_safetensors(os.path.join(out_dir, "reference.safetensors"), t)
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump({"generator": "scripts/reference/quant_reference.py", "cases": cases}, f, indent=2, sort_keys=True)
        f.write("\n")
    print("wrote", out_dir)


if __name__ == "__main__":
    main()

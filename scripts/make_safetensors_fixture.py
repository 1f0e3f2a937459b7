#!/usr/bin/python3
"""Independent safetensors writer/reader for cross-checking peft4j's Java implementation.

Run with Debian's interpreter, which sees Debian's numpy (apt-get install python3-numpy):

  /usr/bin/python3 scripts/make_safetensors_fixture.py [OUT_DIR]
      Writes OUT_DIR/fixture.safetensors and OUT_DIR/fixture_expected.json
      (default OUT_DIR: peft-core/src/test/resources/io). The file is produced by this
      script's own code -- struct + json + numpy bytes -- following the layout rules of the
      reference writer (huggingface/safetensors, safetensors/src/tensor.rs `prepare`):
      tensors ordered by dtype (descending reference Dtype order) then by name, compact JSON
      header with __metadata__ first, padded with spaces to a multiple of 8 bytes.

  /usr/bin/python3 scripts/make_safetensors_fixture.py --verify FILE EXPECTED_JSON
      Parses FILE with this script's own reader (validating like the reference reader) and
      checks every tensor of EXPECTED_JSON bit for bit. Exit status 0 on success. The Java
      test SafeTensorsFixtureTest uses this to check that a file written by Java is read
      back correctly by an independent implementation (skipped when numpy is missing).

The expected JSON stores every value as its bit pattern, so NaN, infinities and -0.0 compare
exactly: for F32/F16/BF16 "f32_bits" holds the float32 bits of the value widened to float32
(what Java's reader must produce), plus "raw_bits" with the stored 16-bit patterns for F16/BF16;
for F64 "f64_bits"; integers are stored as plain JSON integers.
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np

# The reference Dtype enum, in its declaration ("increasing alignment") order; the writer sorts
# tensors by this order, descending, then by name.
DTYPE_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16", "F16", "BF16",
               "I32", "U32", "F32", "C64", "F64", "I64", "U64"]
DTYPE_SIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2,
              "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "C64": 8, "F64": 8, "I64": 8, "U64": 8}
# Little-endian numpy storage type of each dtype (BF16 is handled as raw uint16 bits).
NP_STORAGE = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
              "I8": "i1", "U8": "u1", "I16": "<i2", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "u1"}
MAX_HEADER_SIZE = 100_000_000


def f32_to_bf16_bits(x):
    """Round float32 values to bfloat16 (round to nearest, ties to even), as uint16 bits.
    NaN stays a quiet NaN."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    lsb = (bits >> 16) & 1
    rounded = ((bits + 0x7FFF + lsb) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    rounded[nan] = ((bits[nan] >> 16) | 0x0040).astype(np.uint16)
    return rounded


def bf16_bits_to_f32(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def build_tensors():
    """name -> (dtype, shape, little-endian bytes, expected-values dict)."""
    rng = np.random.default_rng(20240611)
    t = {}

    f32 = rng.standard_normal((3, 4)).astype(np.float32)
    f32[0, 0] = -0.0
    f32[0, 1] = np.float32(1e-40)           # float32 subnormal
    f32[0, 2] = np.float32(3.4028235e38)    # float32 max
    f32[0, 3] = np.inf
    f32[1, 0] = np.nan
    t["encoder.layer.0.weight"] = ("F32", f32)

    f32b = np.arange(6, dtype=np.float32).reshape(2, 3) / np.float32(7)
    t["a.bias"] = ("F32", f32b)

    t["scalar"] = ("F32", np.array(3.5, dtype=np.float32))       # 0-d: shape []
    t["empty"] = ("F32", np.zeros((2, 0), dtype=np.float32))     # 0 elements: data_offsets [x, x]

    f16 = np.array([0.0, -0.0, 1.0 / 3.0, 65504.0, 2.0 ** -24, -2.0 ** -14, np.inf, -np.inf, np.nan,
                    0.1, -1234.5, 6.1e-5], dtype=np.float32).astype(np.float16)
    t["half.vector"] = ("F16", f16.reshape(3, 4))

    bf_src = np.concatenate([rng.standard_normal(5).astype(np.float32),
                             np.array([1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, -0.0, np.inf, 3.0e38, 1e-39],
                                      dtype=np.float32)])
    t["bf16.matrix"] = ("BF16", f32_to_bf16_bits(bf_src).reshape(1, 11))

    t["f64.values"] = ("F64", np.array([0.1, -1e300, 5e-324, 2.0 ** 53 + 1.0], dtype=np.float64))
    t["i8.values"] = ("I8", np.array([-128, -1, 0, 1, 127], dtype=np.int8))
    t["u8.values"] = ("U8", np.array([[0, 1], [128, 255]], dtype=np.uint8))
    t["i32.values"] = ("I32", np.array([-2 ** 31, -7, 0, 2 ** 31 - 1], dtype=np.int32).reshape(2, 1, 2))
    t["i64.values"] = ("I64", np.array([-2 ** 63, -1, 2 ** 40 + 3, 2 ** 63 - 1], dtype=np.int64))

    out = {}
    for name, (dtype, arr) in t.items():
        stored = np.ascontiguousarray(arr).astype(NP_STORAGE[dtype])
        shape = list(arr.shape)
        exp = {"dtype": dtype, "shape": shape}
        flat = stored.reshape(-1)
        if dtype == "F32":
            exp["f32_bits"] = [int(v) for v in flat.view("<u4")]
        elif dtype == "F16":
            exp["raw_bits"] = [int(v) for v in flat.view("<u2")]
            exp["f32_bits"] = [int(v) for v in flat.astype(np.float32).view(np.uint32)]
        elif dtype == "BF16":
            exp["raw_bits"] = [int(v) for v in flat]
            exp["f32_bits"] = [int(v) for v in bf16_bits_to_f32(flat).view(np.uint32)]
        elif dtype == "F64":
            exp["f64_bits"] = [int(v) for v in flat.view("<u8")]
        else:
            exp["values"] = [int(v) for v in flat]
        out[name] = (dtype, shape, stored.tobytes(order="C"), exp)
    return out


def utf8_key(name):
    return name.encode("utf-8")


def write_safetensors(path, tensors, metadata):
    """tensors: name -> (dtype, shape, bytes). Own implementation of the reference layout."""
    names = sorted(tensors, key=lambda n: (-DTYPE_ORDER.index(tensors[n][0]), utf8_key(n)))
    header = {}
    if metadata is not None:
        header["__metadata__"] = dict(sorted(metadata.items()))
    offset = 0
    for n in names:
        dtype, shape, data = tensors[n]
        count = int(np.prod(shape)) if shape else 1
        assert len(data) == count * DTYPE_SIZE[dtype], n
        header[n] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    hbytes = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for n in names:
            f.write(tensors[n][2])
    return names, len(hbytes)


def read_safetensors(path):
    """Own reader with the reference's validation. Returns (metadata, {name: (dtype, shape, bytes)})."""
    buf = Path(path).read_bytes()
    if len(buf) < 8:
        raise ValueError(f"{path}: HeaderTooSmall")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > MAX_HEADER_SIZE:
        raise ValueError(f"{path}: HeaderTooLarge")
    if 8 + n > len(buf):
        raise ValueError(f"{path}: InvalidHeaderLength")
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", None)
    entries = sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))
    start = 0
    data = buf[8 + n:]
    out = {}
    for name, info in entries:
        s, e = info["data_offsets"]
        if s != start or e < s:
            raise ValueError(f"{path}: InvalidOffset({name})")
        count = 1
        for d in info["shape"]:
            count *= d
        if e - s != count * DTYPE_SIZE[info["dtype"]]:
            raise ValueError(f"{path}: TensorInvalidInfo({name})")
        start = e
        out[name] = (info["dtype"], info["shape"], data[s:e])
    if start != len(data):
        raise ValueError(f"{path}: MetadataIncompleteBuffer")
    return metadata, out


def verify(path, expected_path):
    expected = json.loads(Path(expected_path).read_text(encoding="utf-8"))
    metadata, tensors = read_safetensors(path)
    problems = []
    if metadata != expected["metadata"]:
        problems.append(f"metadata {metadata!r} != {expected['metadata']!r}")
    if set(tensors) != set(expected["tensors"]):
        problems.append(f"keys {sorted(tensors)} != {sorted(expected['tensors'])}")
    for name, exp in expected["tensors"].items():
        if name not in tensors:
            continue
        dtype, shape, data = tensors[name]
        if dtype != exp["dtype"] or list(shape) != exp["shape"]:
            problems.append(f"{name}: {dtype}{shape} != {exp['dtype']}{exp['shape']}")
            continue
        flat = np.frombuffer(data, dtype=NP_STORAGE[dtype])
        if dtype == "F32":
            got = [int(v) for v in flat.view("<u4")]
            want = exp["f32_bits"]
        elif dtype in ("F16", "BF16"):
            got = [int(v) for v in flat.view("<u2")]
            want = exp["raw_bits"]
        elif dtype == "F64":
            got = [int(v) for v in flat.view("<u8")]
            want = exp["f64_bits"]
        else:
            got = [int(v) for v in flat]
            want = exp["values"]
        if got != want:
            problems.append(f"{name}: values differ: {got} != {want}")
    if problems:
        for p in problems:
            print("MISMATCH " + p, file=sys.stderr)
        return 1
    print(f"OK {path}: {len(tensors)} tensors match {expected_path}")
    return 0


def main(argv):
    if len(argv) >= 1 and argv[0] == "--verify":
        if len(argv) != 3:
            print(__doc__, file=sys.stderr)
            return 2
        return verify(argv[1], argv[2])
    out_dir = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "peft-core/src/test/resources/io"
    out_dir.mkdir(parents=True, exist_ok=True)
    built = build_tensors()
    metadata = {"format": "pt", "source": "make_safetensors_fixture.py", "unicode": "h\u00e9llo \u2713"}
    names, header_len = write_safetensors(out_dir / "fixture.safetensors",
                                          {n: (d, s, b) for n, (d, s, b, _) in built.items()}, metadata)
    expected = {
        "metadata": metadata,
        "header_length": header_len,
        "data_order": names,
        "tensors": {n: e for n, (_, _, _, e) in sorted(built.items())},
    }
    (out_dir / "fixture_expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n",
                                                  encoding="utf-8")
    # Self-check with the independent reader.
    return verify(out_dir / "fixture.safetensors", out_dir / "fixture_expected.json")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

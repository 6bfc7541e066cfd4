"""Generated hostile inputs for the fuzz tests (no tests here): recipes and dataset rows.

Deterministic for a seed. The recipes mix valid shapes with alias bombs, deep nesting, huge
scalars and numbers, tags, control characters, tabs, duplicates, wrong types and random damage
to a real recipe; the rows mix valid chats with every way a row can be broken.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASE_RECIPE = (REPO / "examples" / "tiny" / "tiny.qlora.yaml").read_text(encoding="utf-8")

_SCALARS = ["1", "-1", "0x1F", "0o17", "1e400", "-.inf", ".nan", "~", "null", "yes", "true", "'q'", '"\\u0000"',
            "!!binary aGk=", "!!python/object:os.system x", "&a 1", "*nope", "[1, 2", "{a: 1", "|\n  text",
            "9" * 5000, "x" * 20_000, "'\\ud800'", '"\\ud800"', "\t1", "<<: *a", "!custom 3", "? complex\n: key"]


def _alias_bomb(rng: random.Random) -> str:
    width, levels = rng.randint(2, 12), rng.randint(3, 12)
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    if rng.random() < 0.5:
        lines.insert(0, BASE_RECIPE)
    return "\n".join(lines) + "\n"


def _deep(rng: random.Random) -> str:
    d = rng.choice([70, 200, 1000, 5000, 50_000])
    kind = rng.randrange(4)
    if kind == 0:
        return "base_model: " + "[" * d + "]" * d + "\n"
    if kind == 1:
        return "base_model: " + "{a: " * d + "1" + "}" * d + "\n"
    if kind == 2:
        d = min(d, 300)
        return "lora:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, d))
    return "data:\n  train: " + "- " * min(d, 5000) + "x\n"


def _mutate(rng: random.Random) -> str:
    text = list(BASE_RECIPE)
    for _ in range(rng.randint(1, 30)):
        op, at = rng.randrange(5), rng.randrange(len(text) + 1)
        if op == 0 and text:
            del text[min(at, len(text) - 1)]
        elif op == 1:
            text.insert(at, rng.choice(":-[]{}&*!|>'\"#%@`\t\n ,?"))
        elif op == 2:
            text.insert(at, chr(rng.choice([0, 1, 7, 8, 0x1B, 0x7F, 0x85, 0xFEFF, 0xFFFE, 0x2028, 0xD7FF, 0x10FFFF])))
        elif op == 3:
            text.insert(at, rng.choice(_SCALARS))
        else:
            text.insert(at, "\n" + rng.choice(["training", "lora", "data", "quantization", "x"]) + ": " + rng.choice(_SCALARS))
    return "".join(text)


def _structured(rng: random.Random) -> str:
    key = rng.choice(["training.lr", "training.max_steps", "lora.r", "lora.target_modules", "data.train",
                      "data.max_seq_len", "quantization.bits", "base_model", "data.chat_template", "output.dir"])
    section, _, leaf = key.rpartition(".")
    value = rng.choice(_SCALARS)
    body = f"{section}:\n  {leaf}: {value}\n" if section else f"{leaf}: {value}\n"
    if rng.random() < 0.5:
        body += body  # duplicate keys
    return BASE_RECIPE + body if rng.random() < 0.7 else body


def hostile_recipes(n: int, seed: int = 7) -> list[str]:
    """n recipe texts, each hostile in its own way."""
    rng = random.Random(seed)
    makers = [_alias_bomb, _deep, _mutate, _mutate, _mutate, _structured, _structured, _structured]
    out = [makers[i % len(makers)](rng) for i in range(n)]
    out[0] = ""  # the empty file
    out[1] = "\x00" * 10
    return out


GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}


def _row(rng: random.Random, i: int) -> bytes:
    k = i % 16
    if k == 0:
        return json.dumps(GOOD).encode()
    if k == 1:
        return bytes(rng.choice([b for b in range(256) if b != 10]) for _ in range(rng.randint(1, 60)))
    if k == 2:
        d = rng.choice([65, 500, 5000, 100_000])
        return b'{"messages": ' + b"[" * d + b"]" * d + b"}"
    if k == 3:
        return b'{"messages": [], "n": ' + b"7" * rng.choice([4301, 5000, 20_000]) + b"}"
    if k == 4:
        esc = rng.choice(["\\ud800", "\\udfff", "\\udc00\\ud800", "\\ud83d"])
        return ('{"messages": [{"role": "user", "content": "a' + esc + '"}, {"role": "assistant", "content": "b"}]}').encode()
    if k == 5:
        return json.dumps(GOOD).encode()[: rng.randint(1, 60)]
    if k == 6:
        return json.dumps({"messages": [{"role": "user", "content": "w " * rng.randint(10_000, 400_000)},
                                        {"role": "assistant", "content": "ok"}]}).encode()
    if k == 7:
        return json.dumps({"messages": rng.choice([5, None, "text", {}, [1, 2], [{"role": 1}], [{"content": "x"}]])}).encode()
    if k == 8:
        return json.dumps({"messages": [{"role": rng.choice(["wizard", "", "USER", "system"]), "content": "x"},
                                        {"role": "assistant", "content": "y"}]}).encode()
    if k == 9:
        return json.dumps({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}] * rng.randint(1, 50)},
                                        {"role": "assistant", "content": [[["deep"]]]}]}).encode()
    if k == 10:
        return rng.choice([b"NaN", b"Infinity", b"[1, 2]", b'"str"', b"null", b"true", b"-0", b"{}", b'{"a": NaN}'])
    if k == 11:
        return ('{"messages": [{"role": "user", "content": "' + "".join(chr(rng.choice([0, 1, 0x85, 0x2028, 0xFEFF, 0x10FFFF]))
                for _ in range(20)).encode("unicode_escape").decode("ascii").replace("\\x", "\\u00") + '"}]}').encode()
    if k == 12:
        return b'{"messages": [{"role": "user", "content": "a"}], "messages": 1}'
    if k == 13:
        return b"\xef\xbb\xbf" + json.dumps(GOOD).encode()  # a BOM in the middle of a file
    if k == 14:
        return json.dumps({"k" * rng.randint(1000, 100_000): 1, "messages": GOOD["messages"]}).encode()
    return json.dumps({"text": "t" * rng.randint(0, 2000), "messages": GOOD["messages"] * rng.randint(1, 40)}).encode()


def hostile_rows(n: int, seed: int = 11) -> list[bytes]:
    """n raw JSONL lines (no newline inside any), each a case."""
    rng = random.Random(seed)
    rows = [_row(rng, i) for i in range(n)]
    return [r if r.strip() else b"{}" for r in rows]

#!/usr/bin/env python3
"""Regenerate test/fixtures/dataset-render/renders.json: Python jinja2 renders for the TypeScript renderer.

Every chat template in test/fixtures/chat-templates/, every built-in template, and small probe
templates for the places where JavaScript Jinja engines differ from jinja2, each rendered with
qlora_studio.data.templates.ChatTemplate over a set of conversations (empty system message, tool
turns, whitespace-padded content, CJK/emoji) with and without the generation prompt. The
TypeScript renderer (src/dataset/template.ts) must produce the same text, or fail on the same rows.
Usage: .venv/bin/python scripts/gen_render_vectors.py [--check]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from datetime import datetime

from qlora_studio.data.rows import RowError
from qlora_studio.data.templates import BUILTIN_TEMPLATES, ChatTemplate, builtin_template_source

#: strftime_now renders this instant (local time), as the masking vectors do, so the file is stable.
FIXED_NOW = datetime(2025, 6, 1, 12, 0, 0)

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("QLORA_RENDER_OUT", ROOT / "test" / "fixtures" / "dataset-render" / "renders.json"))
REAL = Path(os.environ.get("QLORA_RENDER_TEMPLATES", ROOT / "test" / "fixtures" / "chat-templates"))

# Probes for known differences between JavaScript Jinja and jinja2.
PROBES = {
    "probe-empty-system-vs-false": "{% if messages[0]['content'] == false %}F{% else %}T{% endif %}"
                                   "{% if messages[0]['content'] != '' %}N{% endif %}{{ 0 == false }}{{ [] == false }}",
    "probe-strip-chars": "{% for m in messages %}[{{ m['content'].lstrip(' \\n') }}|{{ m['content'].rstrip('!. ') }}|"
                         "{{ m['content'].strip('x ') }}|{{ m['content'].strip() }}]{% endfor %}",
    "probe-undefined-loop": "{% for t in tools %}{{ t }}{% else %}none{% endfor %}|{% for t in tools if t %}x{% endfor %}|"
                            "{{ messages | length }}",
    "probe-generation-whitespace": "A{% if true %}\n\nB{% endif %}\n  {% generation %}\nC{{ messages[0]['content'] }}"
                                   "{% endgeneration %}\n{%- generation -%}\n D {% endgeneration %}E\n",
    "probe-trim-whitespace": "{% for m in messages %}[{{ m['content'] | trim }}|{{ m['content'].strip() }}|"
                             "{{ m['content'].lstrip() }}]{% endfor %}",
    "probe-print-bool-none": "{{ add_generation_prompt }}|{{ 'a' ~ add_generation_prompt }}|{{ messages | length }}|"
                             "{{ messages[-1]['content'] | length }}",
}

CONVERSATIONS: dict[str, list[dict[str, str]]] = {
    "plain": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
    "empty_system": [{"role": "system", "content": ""}, {"role": "user", "content": "Hi"},
                     {"role": "assistant", "content": "Hello!"}],
    "system_multi": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "2+2?"},
                     {"role": "assistant", "content": "4"}, {"role": "user", "content": "3+3?"},
                     {"role": "assistant", "content": "6."}],
    "padded": [{"role": "user", "content": "  \n spaced out \n"}, {"role": "assistant", "content": "\n  ok!  \n"}],
    "unicode": [{"role": "user", "content": "日本語? 🚀 שלום"}, {"role": "assistant", "content": "はい 😄👍"}],
    "tool_turn": [{"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": "{\"name\": \"weather\", \"arguments\": {\"city\": \"Paris\"}}"},
                  {"role": "tool", "content": "{\"temp\": 21}"},
                  {"role": "assistant", "content": "21 degrees."}],
    "empty_reply": [{"role": "user", "content": "Say nothing."}, {"role": "assistant", "content": ""}],
    # White space only Python counts (U+001C..U+001F, U+0085) and only JavaScript counts (U+FEFF).
    "odd_space": [{"role": "user", "content": "\x1c\x85 Hi\u3000\x1f"}, {"role": "assistant", "content": "\ufeffok\ufeff \x1e"}],
}

TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>"}
# A render argument overrides the environment's global, so the instant is fixed for any version.
CLOCK = {"strftime_now": lambda fmt: FIXED_NOW.strftime(fmt)}


def templates() -> dict[str, str]:
    """Name -> source of every template rendered."""
    out = {f"builtin:{name}": builtin_template_source(name) for name in BUILTIN_TEMPLATES}
    for path in sorted(REAL.rglob("*.jinja")):
        out[f"file:{path.relative_to(REAL).as_posix()}"] = path.read_text(encoding="utf-8")
    out.update(PROBES)
    return out


def build() -> dict:
    cases = []
    for name, source in templates().items():
        template = ChatTemplate(source, name)
        for conv_name, messages in CONVERSATIONS.items():
            for gen in (False, True):
                case = {"template": name, "conversation": conv_name, "add_generation_prompt": gen}
                try:
                    case["text"] = template.render(messages, add_generation_prompt=gen, **TOKENS, **CLOCK).text
                except RowError as err:
                    case["error"] = err.kind
                cases.append(case)
    return {"tokens": TOKENS, "conversations": CONVERSATIONS, "templates": templates(), "cases": cases}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when the committed file is stale")
    args = parser.parse_args()
    text = json.dumps(build(), indent=1, ensure_ascii=False) + "\n"
    if args.check:
        if not OUT.is_file() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run .venv/bin/python scripts/gen_render_vectors.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}: {len(json.loads(text)['cases'])} renders")
    return 0


if __name__ == "__main__":
    sys.exit(main())

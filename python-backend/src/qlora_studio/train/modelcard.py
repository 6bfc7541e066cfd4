"""The model card (`README.md`) of a run, an adapter folder or a merged model."""
from __future__ import annotations

from pathlib import Path
from typing import Any

EXAMPLE_MESSAGES = [
    {"role": "user", "content": "Your question here"},
    {"role": "assistant", "content": "The answer the model learnt to give."},
]


def render_prompt_example(tokenizer: Any, messages: list[dict[str, str]] | None = None) -> str:
    """A conversation rendered by the tokenizer's chat template, or a note when there is none."""
    if not getattr(tokenizer, "chat_template", None):
        return "(no chat template: the model was trained on raw text)"
    try:
        return tokenizer.apply_chat_template(messages or EXAMPLE_MESSAGES, tokenize=False)
    except Exception as err:  # a template that needs fields our example lacks must not sink the card
        return f"(the chat template could not render an example: {err})"


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def model_card(*, title: str, base_model: str, recipe_text: str | None, metrics: dict[str, Any],
               prompt_example: str, kind: str = "adapter", notes: list[str] | None = None) -> str:
    """The markdown of a model card. kind: "adapter" (a run or adapter folder) or "merged"."""
    lines = [f"# {title}", "", f"QLoRA fine-tune of `{base_model}`, made with QLoRA Studio.", ""]
    if metrics:
        lines += ["## Metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in metrics.items() if v is not None]
        lines.append("")
    for n in notes or []:
        lines += [n, ""]
    lines += ["## Prompt format", "",
              "Prompts must be rendered with the chat template the model was trained with (saved with "
              "the tokenizer in this folder). Example:", "", "```text", prompt_example.rstrip("\n"), "```", ""]
    lines += ["## How to load", "", "```python"]
    if kind == "merged":
        lines += ["from transformers import AutoModelForCausalLM, AutoTokenizer",
                  "model = AutoModelForCausalLM.from_pretrained(\"path/to/this/folder\")",
                  "tokenizer = AutoTokenizer.from_pretrained(\"path/to/this/folder\")"]
    else:
        lines += ["from peft import AutoPeftModelForCausalLM",
                  "from transformers import AutoTokenizer",
                  "model = AutoPeftModelForCausalLM.from_pretrained(\"path/to/adapter\")  # loads the base too",
                  "tokenizer = AutoTokenizer.from_pretrained(\"path/to/adapter\")",
                  "# or: qlora-studio generate --base BASE --adapter path/to/adapter --prompt \"...\""]
    lines += ["```", ""]
    if recipe_text:
        lines += ["## Recipe", "", "```yaml", recipe_text.rstrip("\n"), "```", ""]
    return "\n".join(lines)


def write_card(path: Path, text: str) -> None:
    """Write a card through a temp file, so a reader never sees half of it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)

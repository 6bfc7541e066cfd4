"""Streamed generation with TextIteratorStreamer and a worker thread."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..adapters import adapter_meta

# transformers resolves its names lazily; two threads importing them for the first time at once
# (the server answering two generate requests) can see a half-initialised module. Imports that
# run on request threads go through this lock.
_IMPORT_LOCK = threading.Lock()


@dataclass
class LoadedModel:
    """A model ready to generate, with the tokenizer whose chat template matches it.

    Keep one in the caller's context (e.g. the server's) to avoid reloading per request.
    """

    model: Any
    tokenizer: Any
    base_model: str
    adapter: str | None


def load_for_generation(base_model: str, adapter: str | None = None) -> LoadedModel:
    """Load the 4-bit base (and the adapter on top); the tokenizer comes from the adapter when it has one."""
    with _IMPORT_LOCK:
        from peft import PeftModel
        from transformers import AutoTokenizer

        from ..train.model import eval_mode, load_quantized_base

    meta = adapter_meta(adapter) if adapter else {}
    if adapter and not (Path(adapter) / "adapter_config.json").exists():
        raise FileNotFoundError(f"{adapter} is not an adapter folder (no adapter_config.json)")
    q = meta.get("quantization", {})
    model, _ = load_quantized_base(
        str(base_model), bits=int(q.get("bits", 4)), quant_type=q.get("quant_type", "nf4"),
        double_quant=bool(q.get("double_quant", True)), compute_dtype=q.get("compute_dtype", "auto"),
        quant_storage=q.get("quant_storage_dtype", "uint8"))
    tok_src = adapter if adapter and (Path(adapter) / "tokenizer_config.json").exists() else base_model
    tokenizer = AutoTokenizer.from_pretrained(tok_src)
    if adapter:
        model = PeftModel.from_pretrained(model, adapter)
    eval_mode(model)
    return LoadedModel(model, tokenizer, str(base_model), str(adapter) if adapter else None)


def _render(tokenizer: Any, messages: list[dict[str, str]] | None, prompt: str | None) -> str:
    if messages is not None:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("this tokenizer has no chat template; pass a raw prompt instead of messages")
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    if prompt is None:
        raise ValueError("pass messages or prompt")
    return prompt


def stream_generate(*, base_model: str, adapter: str | None = None, messages: list[dict[str, str]] | None = None,
                    prompt: str | None = None, max_new_tokens: int = 256, temperature: float = 0.7,
                    top_p: float = 0.9, top_k: int = 50, repetition_penalty: float = 1.0,
                    stop_event: threading.Event | None = None, loaded: LoadedModel | None = None) -> Iterator[str]:
    """Yield text pieces as the model produces them.

    messages are rendered with the chat template (plus the generation prompt); prompt is used as
    raw text. temperature 0 means greedy decoding. Setting stop_event ends generation after the
    current token. Pass `loaded` (from load_for_generation) to reuse a loaded model.
    """
    with _IMPORT_LOCK:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

    lm = loaded or load_for_generation(base_model, adapter)
    tok = lm.tokenizer
    text = _render(tok, messages, prompt)
    inputs = tok(text, return_tensors="pt", add_special_tokens=messages is None)
    device = next(lm.model.parameters()).device
    inputs = {k: v.to(device) for k, v in inputs.items()}

    class _StopOnEvent(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            stop = bool(stop_event is not None and stop_event.is_set())
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
    sample = temperature > 0
    gen_kwargs: dict[str, Any] = {
        **inputs, "streamer": streamer, "max_new_tokens": int(max_new_tokens), "do_sample": sample,
        "repetition_penalty": float(repetition_penalty), "stopping_criteria": StoppingCriteriaList([_StopOnEvent()]),
        "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
        "eos_token_id": tok.eos_token_id,
    }
    if sample:
        gen_kwargs.update(temperature=float(temperature), top_p=float(top_p), top_k=int(top_k))
    else:
        gen_kwargs.update(temperature=None, top_p=None, top_k=None)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with torch.no_grad():
                lm.model.generate(**gen_kwargs)
        except BaseException as err:  # surfaced in the caller's thread below
            errors.append(err)
            streamer.end()

    thread = threading.Thread(target=work, name="qlora-generate", daemon=True)
    thread.start()
    try:
        for piece in streamer:
            if piece:
                yield piece
    finally:
        if stop_event is not None and thread.is_alive():
            stop_event.set()
        thread.join()
    if errors:
        raise errors[0]

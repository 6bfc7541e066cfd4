"""Generation for the playground and `qlora-studio generate`: base or base+adapter, streamed.

The base is loaded 4-bit exactly as in training (settings read from the adapter's
`qlora_studio.json` when present), and prompts are rendered by the chat template the adapter
was trained with (saved in the adapter folder), so what you try is what you trained.
"""
from .stream import LoadedModel, load_for_generation, stream_generate
from .introspect import introspect_model

__all__ = ["LoadedModel", "introspect_model", "load_for_generation", "stream_generate"]

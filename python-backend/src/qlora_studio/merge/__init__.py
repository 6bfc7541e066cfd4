"""Merging an adapter into its base: `merge_adapter(adapter_dir, out_dir, dtype=..., progress=...)`.

The base is loaded UNQUANTIZED (bf16/fp16/fp32): folding LoRA deltas into 4-bit weights would
re-quantize them and lose most of what was learnt. The result is verified against base+adapter
(unmerged, same dtype) on fixed prompts before it is published.
"""
from .merge import MergeError, merge_adapter

__all__ = ["MergeError", "merge_adapter"]

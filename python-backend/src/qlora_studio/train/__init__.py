"""The training engine: `run_training` turns a recipe into a run directory (see qlora.py)."""
from .errors import (EXIT_BAD_DATA, EXIT_BAD_RECIPE, EXIT_INTERNAL, EXIT_OK, EXIT_OOM, EXIT_STOPPED, OOM_HINT,
                     Failure, classify, is_oom)
from .model import ModelNotFoundError, load_quantized_base, pick_device
from ..errors import UsageError
from .qlora import QLoRARun, RunFailed, RunStopped, run_training

__all__ = [
    "EXIT_BAD_DATA", "EXIT_BAD_RECIPE", "EXIT_INTERNAL", "EXIT_OK", "EXIT_OOM", "EXIT_STOPPED", "OOM_HINT",
    "Failure", "ModelNotFoundError", "QLoRARun", "RunFailed", "RunStopped", "UsageError", "classify", "is_oom",
    "load_quantized_base", "pick_device", "run_training",
]

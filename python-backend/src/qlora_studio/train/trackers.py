"""Optional experiment trackers (recipe `logging:`): TensorBoard and Weights & Biases, each
through its own library, fed from the same metrics and eval events the run writes to its log.

Both are off by default. Asking for one whose library is not installed is a recipe error that
says what to install, raised before the model loads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import EXIT_BAD_RECIPE, StudioError

TENSORBOARD_DIR = "tensorboard"


class TrackerMissingError(StudioError):
    """The recipe asks for a tracker whose library is not installed on the backend host."""

    kind, exit_code, protocol_code = "bad_recipe", EXIT_BAD_RECIPE, "invalid_params"
    hint = "Install the package in the backend's Python, or turn the tracker off in the recipe's logging section."


class Trackers:
    """The trackers a recipe turns on; `log(event)` forwards metrics and eval events to them."""

    def __init__(self, logging: Any, run_dir: Path, run_id: str, config: dict[str, Any]) -> None:
        self._tb: Any = None
        self._wandb: Any = None
        if logging is None:
            return
        if logging.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise TrackerMissingError("logging.tensorboard is true but the tensorboard package is not installed: "
                                          "pip install 'qlora-studio[tensorboard]' (or set logging.tensorboard: false)") from None
            self._tb = SummaryWriter(log_dir=str(run_dir / TENSORBOARD_DIR))
        if logging.wandb is not None:
            try:
                import wandb
            except ImportError:
                raise TrackerMissingError("logging.wandb is set but the wandb package is not installed: "
                                          "pip install 'qlora-studio[wandb]' (or remove logging.wandb)") from None
            w = logging.wandb
            self._wandb = wandb.init(project=w.project, entity=w.entity, name=w.name or run_id, id=run_id,
                                     resume="allow", dir=str(run_dir), config=config)

    @property
    def active(self) -> bool:
        """Whether any tracker is on."""
        return self._tb is not None or self._wandb is not None

    def log(self, ev: dict[str, Any]) -> None:
        """Forward one run event (only metrics and eval carry figures)."""
        t, d = ev.get("type"), ev.get("data") or {}
        if t not in ("metrics", "eval") or not self.active:
            return
        step = int(d.get("step", 0))
        keys = ("loss", "lr", "grad_norm", "tokens_per_s") if t == "metrics" else ("eval_loss",)
        figures = {f"{'train' if t == 'metrics' else 'eval'}/{k}": float(d[k]) for k in keys if isinstance(d.get(k), (int, float))}
        if self._tb is not None:
            for name, value in figures.items():
                self._tb.add_scalar(name, value, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(figures, step=step)

    def close(self) -> None:
        """Flush and close every tracker (idempotent)."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

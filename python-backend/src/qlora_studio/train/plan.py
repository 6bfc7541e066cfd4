"""How a CUDA run spends the GPU memory it may use: fewer recomputed layers, fewer, larger forwards.

The recipe's `micro_batch_size` and `gradient_checkpointing` say what the run must fit in the
worst case; on a GPU with room to spare they leave speed on the table. Gradient checkpointing
replays each layer's forward in backward: for a QLoRA layer, whose frozen weights need no
gradient, forward and backward cost about the same, so the replay adds about half of the layer's
training time. Several small forwards per optimizer step pay the per-layer launch cost (and the
GPU idles while Python queues kernels) once per micro-batch.

After the run's first optimizer step, taken exactly as the recipe says, the engine knows what
that costs on this GPU: the memory that stays (weights, adapters, optimizer state) and the step's
transient peak. `choose_plan` then picks, inside the budget (`training.memory_budget_gib`):

- `keep`: how many decoder layers keep their activations on the GPU instead of being
  checkpointed (each costs `per_layer(tokens)` bytes, from the estimator's per-layer formula);
- `merge`: how many of the recipe's packed micro-batches are joined into one forward. Rows of a
  packed micro-batch are laid end to end with positions restarting per example and the loss is
  summed over the step's trained tokens, so joining them changes neither the batch nor the loss.

It takes the cheapest plan by a simple cost model (a replayed layer costs half a layer; a forward
costs a tenth of a micro-batch's compute in overhead) with a tenth of the budget kept back for
fragmentation. If a planned step still runs out of memory, the engine drops back to the recipe's
plan and retakes that step (qlora.py), so a wrong prediction costs one step, not the run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

GIB = 1024**3
# Share of the budget kept back for fragmentation and kernels' scratch space.
HEADROOM = 0.10
# A replayed (checkpointed) layer costs this share of the layer's forward + backward.
REPLAY_COST = 0.5
# Launch overhead of one forward + backward, as a share of one recipe micro-batch's compute.
FORWARD_COST = 0.1


@dataclass(frozen=True)
class Plan:
    """What the training loop does differently from the recipe as written (1, 0 = nothing)."""

    merge: int = 1      # recipe micro-batches joined per forward
    keep: int = 0       # decoder layers (the first ones) kept out of checkpointing
    layers: int = 0     # decoder layers in the model
    predicted_peak: int = 0
    budget: int = 0

    @property
    def is_recipe(self) -> bool:
        return self.merge == 1 and self.keep == 0

    def describe(self, micro_batch_size: int, checkpointing: bool) -> str:
        parts = []
        if self.merge > 1:
            parts.append(f"{self.merge} micro-batches of {micro_batch_size} rows joined per forward "
                         f"({self.merge * micro_batch_size} rows)")
        if checkpointing and self.keep:
            parts.append(f"{self.keep} of {self.layers} layers keep their activations (no recompute)")
        what = "; ".join(parts) or "as the recipe says"
        return (f"{what}; predicted peak {self.predicted_peak / GIB:.1f} GiB "
                f"of a {self.budget / GIB:.1f} GiB budget")


def merge_factors(grad_accum: int, can_merge: bool) -> list[int]:
    """Ways to join a step's micro-batches into equal forwards: divisors of grad_accum."""
    if not can_merge:
        return [1]
    return [g for g in range(1, grad_accum + 1) if grad_accum % g == 0]


def choose_plan(*, layers: int, grad_accum: int, checkpointing: bool, can_merge: bool,
                resident: int, transient: int, per_layer: Callable[[int], int], merge_tokens: int,
                budget: int, max_merge_tokens: int | None = None) -> Plan:
    """The cheapest plan whose predicted peak fits in (1 - HEADROOM) x budget.

    `resident`: bytes allocated between steps (weights, adapters, optimizer state); `transient`:
    the first step's peak above what was allocated when it began, with the recipe's plan;
    `per_layer(tokens)`: activation bytes of one un-checkpointed layer for a forward of `tokens`;
    `merge_tokens`: tokens of one recipe micro-batch (rows x max_seq_len); joined forwards stay
    within `max_merge_tokens` (longer ones would run the MLP in checkpointed tiles). The transient part is
    scaled with the tokens of a forward, which over-counts what does not grow with it (adapter
    gradients, the loss chunks): a safe error. Returns the recipe's plan when nothing else fits.
    """
    usable = int(budget * (1 - HEADROOM))
    best = Plan(layers=layers, predicted_peak=resident + transient, budget=budget)
    best_cost = _cost(best, layers, grad_accum, checkpointing)
    for g in merge_factors(grad_accum, can_merge):
        if g > 1 and max_merge_tokens is not None and g * merge_tokens > max_merge_tokens:
            continue
        peak_g = resident + transient * g
        if peak_g > usable:
            continue
        keep = 0
        if checkpointing:
            per = max(1, per_layer(g * merge_tokens))
            keep = max(0, min(layers, (usable - peak_g) // per))
            peak_g += keep * per
        plan = Plan(merge=g, keep=int(keep), layers=layers, predicted_peak=int(peak_g), budget=budget)
        cost = _cost(plan, layers, grad_accum, checkpointing)
        if cost < best_cost - 1e-9:
            best, best_cost = plan, cost
    return best


def _cost(plan: Plan, layers: int, grad_accum: int, checkpointing: bool) -> float:
    """Relative time of one optimizer step under `plan` (one micro-batch's compute = 1)."""
    replayed = (layers - plan.keep) / layers if checkpointing and layers else 0.0
    return grad_accum / plan.merge * FORWARD_COST + grad_accum * (1 + REPLAY_COST * replayed)


def budget_bytes(setting: object, free: int, reserved: int, context: int = GIB) -> int:
    """The budget in bytes the allocator may reach: `auto` = free device memory plus what this
    process already holds; a number of GiB counts the CUDA context (about 1 GiB) too, and never
    exceeds what the device has. 0 means no plan."""
    available = free + reserved
    if setting in (None, "auto"):
        return available
    gib = float(setting)  # type: ignore[arg-type]
    if gib <= 0:
        return 0
    return max(0, min(available, int(gib * GIB) - context))


class Planner:
    """The engine's side: measure the first step, choose, apply, and fall back on out-of-memory."""

    def __init__(self, model: Any, recipe: Any, log: Callable[..., None], *, active: bool,
                 dropout_copies: bool = True) -> None:
        from .offload import decoder_layers

        self.model, self.recipe, self.log = model, recipe, log
        self.dropout_copies = dropout_copies
        self.plan = Plan(layers=len(decoder_layers(model)))
        self.pending = active and budget_setting(recipe) != 0
        self._alloc0 = 0

    def before_step(self) -> None:
        if self.pending:
            import torch

            self._alloc0 = torch.cuda.memory_allocated()

    def after_step(self) -> None:
        """After the first optimizer step of this process: choose and apply the plan (once)."""
        if not self.pending:
            return
        self.pending = False
        import torch

        from ..estimate.memory import layer_activation_bytes
        from .offload import MLP_TILE_TOKENS, keep_layers

        t, d = self.recipe.training, self.recipe.data
        # The process peak so far: the load's peak if that was higher, which only over-counts.
        transient = max(0, torch.cuda.max_memory_allocated() - self._alloc0)
        resident = torch.cuda.memory_allocated()
        free, _total = torch.cuda.mem_get_info()
        setting = budget_setting(self.recipe)
        budget = budget_bytes(setting, free, torch.cuda.memory_reserved())
        config = self.model.config.to_dict()

        def per_layer(tokens: int) -> int:
            return layer_activation_bytes(config, self.recipe, tokens, dropout_copies=self.dropout_copies)

        try:
            per_layer(1)
        except ValueError as err:
            self.log(f"memory plan: as the recipe says (cannot size a layer of this model: {err})")
            return
        merge_tokens = int(t.micro_batch_size) * int(d.max_seq_len)
        plan = choose_plan(layers=self.plan.layers, grad_accum=int(t.grad_accum),
                           checkpointing=bool(t.gradient_checkpointing), can_merge=bool(d.packing),
                           resident=resident, transient=transient, per_layer=per_layer,
                           merge_tokens=merge_tokens, budget=budget,
                           max_merge_tokens=max(merge_tokens, 2 * MLP_TILE_TOKENS))
        self.plan = plan
        if setting != "auto" and resident + transient > budget:
            self.log(f"training.memory_budget_gib {setting} is below what the recipe itself needs "
                     f"(first step: {(resident + transient) / GIB:.1f} GiB plus the CUDA context): the run keeps the "
                     "recipe's plan and cannot stay inside it; lower training.micro_batch_size or data.max_seq_len to "
                     "need less", "warning")
        if plan.keep:
            keep_layers(self.model, plan.keep)
        self.log("memory plan: " + plan.describe(int(t.micro_batch_size), bool(t.gradient_checkpointing))
                 + f" (first step: {resident / GIB:.1f} GiB resident + {transient / GIB:.1f} GiB peak above it;"
                 " training.memory_budget_gib: 0 turns this off)")

    def groups(self, micro: list[Any]) -> list[Any]:
        """This step's forwards: the recipe's micro-batches, joined `merge` at a time."""
        from .batches import join_micro_batches

        g = self.plan.merge
        if g <= 1:
            return micro
        return [join_micro_batches(micro[i:i + g]) for i in range(0, len(micro), g)]

    def drop(self, why: str) -> None:
        """Back to the recipe's plan (after a planned step ran out of memory)."""
        from .offload import keep_layers

        keep_layers(self.model, 0)
        was = self.plan
        self.plan = Plan(layers=was.layers)
        self.log(f"memory plan: the planned step ran out of memory ({why}); retaking it as the recipe says "
                 f"(predicted {was.predicted_peak / GIB:.1f} GiB; lower training.memory_budget_gib to plan "
                 "with less)", "warning")


def budget_setting(recipe: Any) -> Any:
    """training.memory_budget_gib as written ('auto' when absent)."""
    value = getattr(recipe.training, "memory_budget_gib", "auto")
    return "auto" if value is None else value


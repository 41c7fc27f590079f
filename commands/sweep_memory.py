"""A sweep's memory, planned before anything trains, and the refusal of a grid whose stacks would not fit.

For a stack of M members of its widest net (P parameters, W of them weights, hidden widths h, K outputs, in the
stack's dtype of s bytes), the plan counts in bytes what the sweep allocates:

- data: the splits its members read, once per distinct tensor (loaded already when the plan is made); members whose
  data differ are stacked, one copy each, for training and again for evaluation;
- parameters: weights and biases, and the masks that keep padded weights at zero, built in float64;
- optimiser: its state (SGD with momentum 1, Adam 2 arrays of M x P), cloned once more into each checkpoint, and one
  update's gradients and temporaries;
- block: the training rows one Lightning step gathers (x, y and their row index, per copy of the rows; x converted
  to the stack's dtype), and what each of its updates returns until the step ends: a loss per member (in a list,
  then stacked) and the logits of the update's rows;
- evaluation: the test split through every member at once, in float64: each hidden layer's activations, one
  layer's pre-activations, and the logits with what the head and the metrics derive from them;
- results: a row per member and snapshot (Python dicts, then table cells) and the loss history per epoch.

Trained stacks stay in the sweep's result (parameters, optimiser state, loss history, results), so a stack's need is
its own peak plus what the stacks before it hold. The grid is refused when a stack's need, times the processes this
machine runs (DDP), exceeds MemAvailable, before anything trains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from commands.sweep_grid import Member, SweepError, chunked
from models.sweep_module import shares_tensors, widest_spec

BLOCK_BYTES = 64 * 2**20  # what one Lightning step of a stack gathers and returns at most, unless one batch needs more
RESULT_ROW_BYTES = 2048  # a results row: the module's dict, the sweep's copy with its values, its table cells
EVALUATION_OUTPUTS = 6  # (M, rows, K) float64 arrays at evaluation: logits, probabilities, the head's and metrics' own
STEP_TEMPORARIES = 3  # (M, P) arrays per update besides the state: gradients, lr x gradient, the masked gradient
ADAM_TEMPORARIES = 3  # Adam's step adds these: the bias-corrected moments and the denominator
MEMINFO = Path("/proc/meminfo")


@dataclass
class StackPlan:
    """Bytes one stack needs; ``peak`` is its own high-water mark, ``held`` what stays once it has trained."""

    members: int
    data: int  # loaded before the plan: shown, not added
    copies: int  # the data stacked per member, where members' data differ
    parameters: int
    optimiser: int
    block: int
    evaluation: int
    results: int
    held: int

    @property
    def peak(self) -> int:
        return self.copies + self.parameters + self.optimiser + self.block + self.evaluation + self.results

    def terms(self) -> str:
        parts = ("copies", "parameters", "optimiser", "block", "evaluation", "results")
        return " + ".join(f"{name} {size(getattr(self, name))}" for name in parts)


def size(n: float) -> str:
    """Bytes in the unit that reads best: 812 B, 9.6 kB, 128 MB, 4.8 GB (powers of 1024)."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (what the kernel can give without swapping), or None where there is none."""
    try:
        text = MEMINFO.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def local_processes(devices: object, strategy: object) -> int:
    """The processes a DDP run starts on this machine (one per device), each holding a whole stack; else 1."""
    name = str(getattr(strategy, "class_path", strategy)).lower()
    if "ddp" not in name:
        return 1
    if isinstance(devices, (list, tuple)):
        return len(devices)
    return int(devices) if str(devices).isdigit() else 1


def copies_per_row(stack: list[Member]) -> int:
    """How many copies of each training row a step gathers: one when members share data and order, else M."""
    data = [m.data for m in stack]
    shared_order = len({d.seed for d in data}) == 1 or not stack[0].shuffle
    return 1 if shares_tensors(data) and shared_order else len(stack)


def updates_for(rows: int, batch_size: int, rows_per_update: int | None) -> int:
    """Optimiser updates over ``rows`` rows cut into batches (each batch cut on its own into updates)."""
    full, tail = divmod(rows, batch_size)
    per_batch = (lambda r: math.ceil(r / rows_per_update)) if rows_per_update else (lambda r: 1)
    return full * per_batch(batch_size) + (per_batch(tail) if tail else 0)


def step_bytes(stack: list[Member], dtype: torch.dtype, rows: int, updates: int) -> int:
    """What a step of ``rows`` training rows in ``updates`` updates gathers and returns (see the module docstring)."""
    first = stack[0].data
    itemsize = torch.empty((), dtype=dtype).element_size()
    x, y = first.x_train, first.y_train
    x_row = x[0].numel() * x.element_size()
    row = x_row + y[0].numel() * y.element_size() + 8  # x, y and the int64 row index
    if x.dtype != dtype:
        row += x[0].numel() * itemsize
    outputs = len(stack) * (2 * updates * itemsize + rows * widest_spec([m.spec for m in stack]).output_size * itemsize)
    return copies_per_row(stack) * rows * row + outputs


def epochs_per_block(stack: list[Member], epochs: int, dtype: torch.dtype) -> int:
    """Notebook epochs per Lightning step: as many whole epochs as fit BLOCK_BYTES (0: an epoch does not, so the stack
    streams it in batches)."""
    first = stack[0]
    n = first.data.x_train.shape[0]
    epoch = step_bytes(stack, dtype, n, updates_for(n, first.batch_size, first.rows_per_update))
    return min(epochs, BLOCK_BYTES // epoch)


def plan_stack(stack: list[Member], epochs: int, snapshots: int, dtype: torch.dtype, checkpoints: bool) -> StackPlan:
    """The bytes one stack of ``stack`` needs over ``epochs`` epochs with ``snapshots`` evaluations."""
    first, count = stack[0], len(stack)
    spec = widest_spec([m.spec for m in stack])
    itemsize = torch.empty((), dtype=dtype).element_size()
    sizes = spec.layer_sizes
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    params = weights + (sum(sizes[1:]) if spec.bias else 0)
    data = [m.data for m in stack]
    tensors = {id(t): t for d in data for t in (d.x_train, d.y_train, d.x_test, d.y_test)}
    loaded = sum(t.numel() * t.element_size() for t in tensors.values())
    splits = (first.data.x_train, first.data.y_train, first.data.x_test, first.data.y_test)
    copies = 0 if shares_tensors(data) else count * sum(t.numel() * t.element_size() for t in splits)
    kind, settings = first.optimizer
    state = 2 if kind == "adam" else int(bool(settings.get("momentum")))
    temporaries = STEP_TEMPORARIES + (ADAM_TEMPORARIES if kind == "adam" else 0)
    optimiser = count * params * itemsize * (state * (2 if checkpoints else 1) + temporaries)
    n = first.data.x_train.shape[0]
    per_block = epochs_per_block(stack, epochs, dtype)
    if per_block:
        rows, updates = per_block * n, per_block * updates_for(n, first.batch_size, first.rows_per_update)
    else:  # streamed: a batch per step
        rows = min(first.batch_size, n)
        updates = updates_for(rows, first.batch_size, first.rows_per_update)
    block = step_bytes(stack, dtype, rows, updates)
    x_test = first.data.x_test
    test_rows = x_test.shape[0]
    activations = 2 * sum(spec.hidden_sizes) + max(spec.hidden_sizes, default=0)
    evaluation = count * test_rows * (activations + EVALUATION_OUTPUTS * spec.output_size) * 8
    evaluation += (count if copies else 1) * x_test.numel() * 8  # the test split in float64
    losses = epochs * count * 8
    results = count * snapshots * RESULT_ROW_BYTES + 2 * losses
    parameters = count * (params + weights) * 8
    held = count * (params + weights) * itemsize + count * params * itemsize * state + losses
    held += count * snapshots * RESULT_ROW_BYTES
    return StackPlan(count, loaded, copies, parameters, optimiser, block, evaluation, results, held)


def needs(plans: list[StackPlan]) -> list[int]:
    """Each stack's need: its peak plus what the stacks before it hold."""
    held, out = 0, []
    for plan in plans:
        out.append(held + plan.peak)
        held += plan.held
    return out


def fitting_max_members(
    groups: list[list[Member]], epochs: int, snapshots: int, dtype: torch.dtype, checkpoints: bool, budget: int
) -> int | None:
    """The largest max_members whose stacks all fit in ``budget`` bytes, or None when not even one member per stack
    does (what trained stacks hold grows with the grid, whatever the cut)."""

    def fits(limit: int) -> bool:
        stacks = chunked(groups, limit)
        return max(needs([plan_stack(s, epochs, snapshots, dtype, checkpoints) for s in stacks])) <= budget

    low, high = 0, max(len(group) for group in groups)
    while low < high:  # the need grows with the stack's size: the largest limit that fits
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low or None


def check_memory(
    groups: list[list[Member]],
    stacks: list[list[Member]],
    epochs: int,
    snapshots: int,
    dtype: torch.dtype,
    checkpoints: bool,
    processes: int,
    available: int | None,
) -> list[str]:
    """Each stack's plan as printable lines; a SweepError, in one message, when a stack would not fit in
    ``available`` bytes shared by ``processes`` processes, naming a max_members that would fit."""
    plans = [plan_stack(stack, epochs, snapshots, dtype, checkpoints) for stack in stacks]
    stack_needs = needs(plans)
    where = f"MemAvailable {size(available)}" if available is not None else "available memory unknown"
    per = f", times {processes} processes" if processes > 1 else ""
    lines = [f"memory plan ({where}{per}):"]
    for i, (plan, need) in enumerate(zip(plans, stack_needs)):
        if i < 3 or i == len(plans) - 1:
            lines.append(
                f"  stack {i + 1}/{len(plans)}: {plan.members} member{'s' if plan.members != 1 else ''}, "
                f"{size(need)} = {plan.terms()}"
                + (f" + earlier stacks {size(need - plan.peak)}" if i else "")
                + f"; data {size(plan.data)} (loaded)"
            )
        elif i == 3:
            lines.append(f"  ... stacks 4-{len(plans) - 1} alike")
    worst = max(range(len(plans)), key=lambda i: stack_needs[i])
    if available is not None and stack_needs[worst] * processes > available:
        budget = available // processes
        fitting = fitting_max_members(groups, epochs, snapshots, dtype, checkpoints, budget)
        plan = plans[worst]
        advice = (
            f"set --sweep.max_members {fitting} (or max_members: {fitting} in the sweep file) to train it in stacks "
            "that fit"
            if fitting
            else "no stack size fits: what the trained members hold grows with the grid; use a smaller grid or fewer "
            "snapshots, or free memory"
        )
        raise SweepError(
            f"stack {worst + 1}/{len(plans)} ({plan.members} members) would need about {size(stack_needs[worst])}"
            f"{per} ({plan.terms()}), but {size(available)} is available (MemAvailable, /proc/meminfo); {advice}"
        )
    return lines

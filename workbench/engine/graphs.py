"""The training step as one CUDA graph: captured once, replayed every step.

On a GPU the step of a small GAN is bound by kernel launches, not arithmetic:
the MLP GAN's step is 165 small kernels (measured on an H100), each costing more CPU time to
launch from Python than GPU time to run. A CUDA graph records the whole step
(the batch gather and its conversion to float, both networks' forward and
backward passes, both optimizer steps, the metrics) once and replays it with
one launch.

What a replay relies on, and how the engine keeps it true:

- **fixed tensors**: the batch comes in through one index tensor that is
  refilled before each replay; the weights, BatchNorm buffers, gradients and
  optimizer slots keep their storage (checkpoints are restored before capture;
  ``StepGuard`` and sample grids copy in place).
- **the same Python decisions every step**: the capture records one path
  through ``train_step``. ``D.requires_grad_(False)`` during G's step is such a
  decision, made at capture time, so D's frozen and trainable passes are both
  recorded correctly (the trap of compiling each network). A model whose step
  branches in Python (say, G every fifth step) must not be graphed:
  ``graph_safe`` trusts only a class that defines ``train_step`` and declares
  ``cuda_graph_safe = True`` itself.
- **random numbers**: the run's noise generator is registered with the graph,
  so each replay draws fresh noise and advances the generator as eager steps do.
- **warm-up**: the first steps run eagerly on the capture stream (cuDNN picks
  its algorithms, the optimizers create their slots), then the next step is
  captured and replayed.
"""

from __future__ import annotations

from typing import Callable

import torch

from workbench.base.errors import ConfigError

WARMUP_STEPS = 3  # eager steps before the capture, as PyTorch's whole-network capture example does

StepFn = Callable[[torch.Tensor], torch.Tensor]


def graph_safe(model) -> bool:
    """True when the class that defines ``model.train_step`` declares ``cuda_graph_safe = True`` itself."""
    for klass in type(model).__mro__:
        if "train_step" in vars(klass):
            return vars(klass).get("cuda_graph_safe", False) is True
    return False


def use_graphs(setting: str, device: torch.device, model) -> bool:
    """Whether to graph the step: never off CUDA (``tune_backends`` refuses ``on`` there), always for ``on``,
    for a graph-safe model with ``auto``."""
    if setting == "off" or device.type != "cuda":
        return False
    return setting == "on" or graph_safe(model)


class GraphedStep:
    """Calls ``step(idx)`` eagerly for the warm-up steps, then captures it once and replays the graph.

    :param step: one training step on the batch with indices ``idx``; returns a 1-D tensor of metrics.
    :param batch_size: the length of every ``idx``.
    :param model: its networks and optimizers; its noise generator is registered with the graph.
    :param on_fallback: called with a sentence when the capture fails and the steps go on eagerly
        (``strict`` raises ``ConfigError`` instead).
    """

    def __init__(self, step: StepFn, batch_size: int, model, device: torch.device,
                 on_fallback: Callable[[str], None], strict: bool = False):
        self.step, self.model, self.device = step, model, device
        self.on_fallback, self.strict = on_fallback, strict
        self.idx = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.stream = torch.cuda.Stream(device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.values: torch.Tensor | None = None
        self.eager = False  # the capture failed: every step runs eagerly
        self.calls = 0

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        self.idx.copy_(idx, non_blocking=True)
        if self.graph is None and not self.eager:
            self.calls += 1
            if self.calls <= WARMUP_STEPS:
                return self._on_capture_stream(lambda: self.step(self.idx))
            self._capture()  # sets self.graph, or self.eager when the capture fails
        if self.graph is not None:
            self.graph.replay()
            return self.values
        return self.step(self.idx)

    def _on_capture_stream(self, fn):
        """Run ``fn`` on the side stream the capture uses, ordered after everything queued before it."""
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream):
            out = fn()
        current.wait_stream(self.stream)
        return out

    def _capture(self) -> None:
        model = self.model
        flags = [(p, p.requires_grad) for net in model.networks.values() for p in net.parameters()]
        groups = [(g, g["capturable"]) for opt in model.optimizers.values() for g in opt.param_groups
                  if "capturable" in g]
        for group, _ in groups:  # fused Adam keeps its step counts on the device already
            group["capturable"] = True
        noise = model.noise if model.noise is not None and model.noise.device.type == "cuda" else None
        generators = [torch.cuda.default_generators[self.device.index or 0]] + ([noise] if noise else [])
        positions = [(gen, gen.clone_state()) for gen in generators]
        graph = torch.cuda.CUDAGraph()
        try:
            if noise is not None:
                graph.register_generator_state(noise)
            torch.cuda.synchronize(self.device)
            with torch.cuda.graph(graph, stream=self.stream):
                values = self.step(self.idx)
        except Exception as exc:
            for p, flag in flags:  # the step may have stopped with D frozen
                p.requires_grad_(flag)
            for group, flag in groups:
                group["capturable"] = flag
            for gen, position in positions:  # an aborted capture leaves a generator in capture mode
                gen.graphsafe_set_state(position)
            self.eager = True
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
            if self.strict:
                raise ConfigError(f"cuda_graphs=on, but the training step could not be captured as a CUDA graph "
                                  f"({reason}); use cuda_graphs=auto or off.") from None
            self.on_fallback(f"The training step could not be captured as a CUDA graph ({reason}); training "
                             f"goes on without graphs (cuda_graphs=off avoids trying).")
            return
        self.graph, self.values = graph, values

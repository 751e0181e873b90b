"""Data-parallel training over MPI: one model, K processes, each a share of every batch.

Start a script (or ``chainrule train``) with ``mpiexec -n K``; every process (a *rank*)
builds the same model, and the pieces below keep the K copies one model:

* ``init()``: this process's rank and the world size. Without ``mpiexec`` (or with one
  process) it is world size 1 and MPI is never loaded, so ``mpi4py`` is only needed for
  K > 1 (``pip install -e ".[distributed]"``). Under K > 1 an uncaught exception or a
  Ctrl-C on any rank stops every rank (``MPI_Abort``) with a message saying which rank
  failed and why, never a hang.
* ``broadcast_state(model)``: rank 0's parameters, buffers (batch-norm running
  statistics) and random generators (dropout masks) copied to every rank.
* ``ShardedLoader(loader)``: every rank walks the same epoch (the same shuffled order,
  from the same seed) in the same global batches, and keeps its own slice of each:
  rank r of K takes rows ``[r·B//K, (r+1)·B//K)`` of a global batch of B rows. The
  slices are disjoint, together they are the batch, their sizes differ by at most one
  row (B = 100 on 3 ranks: 33, 33, 34); an epoch's last, smaller batch is split the
  same way (a rank may get no rows of it, and still takes part).
* ``global_mean_loss(loss_fn)``: every rank's loss is its share's mean; the returned
  value is the mean over the *global* batch, Σ_r (n_r/B)·L_r (one all-reduce of one
  number), and the gradient that flows back is this rank's part of it, (n_r/B)·∂L_r.
* ``DistributedOptimizer(optimizer)``: before every step the gradients are summed over
  the ranks (then they are the gradient of the global batch's loss), in one flat buffer
  per dtype and one ``Allreduce``; clipping, if any, comes after the sum.
* ``sync_batch_norm(model)``: batch-norm layers take their mean and variance over the
  global batch (Σx and Σx² all-reduced in forward, Σĝ and Σĝ·x̂ in backward).
* ``sync_dropout(model)``: each dropout mask is drawn for the global batch from the same
  generator on every rank, and each rank keeps its slice.
* ``GlobalMetrics``: a ``fit`` callback turning the epoch's train loss and accuracy into
  those of the global batches.

With all of them, K ranks train the weights the one-process run trains, to float32
round-off. ``prepare`` applies them in one call; a script of its own needs these lines::

    from chainrule import distributed
    world = distributed.init()
    run = distributed.prepare(model, loss_fn, optimizer, train_loader)
    history = fit(model, run.loss_fn, run.optimizer, run.train_loader, epochs,
                  callbacks=run.callbacks, clip_grad_norm=run.clip_grad_norm,
                  checkpoint_dir=folder if world.is_main else None)

Only rank 0 should write files and print (``world.is_main``). The core, ``ops`` and
``nn`` know nothing of this module: it works on a model from the outside.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule._extras import MissingExtraError, install_hint
from chainrule.ops.normalization import update_running_stats
from chainrule.tensor import Function, Tensor, as_tensor, is_grad_enabled
from chainrule.train import Callback, perplexity

__all__ = ["World", "BatchShare", "DistributedUnavailable", "init", "broadcast_state",
           "ShardedLoader", "global_mean_loss", "DistributedOptimizer", "sync_batch_norm",
           "sync_dropout", "GlobalMetrics", "Prepared", "prepare", "describe_failure",
           "INSTALL_HINT"]

INSTALL_HINT = install_hint("distributed")

#: Environment variables by which MPI launchers tell a process how many were started:
#: MPICH's and Intel MPI's Hydra (PMI_SIZE), Open MPI (OMPI_COMM_WORLD_SIZE).
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


class DistributedUnavailable(MissingExtraError):
    """Started by ``mpiexec`` with several processes, but ``mpi4py`` cannot be imported."""


@dataclass
class BatchShare:
    """This rank's rows ``[start, stop)`` of a global batch of ``total`` rows."""

    start: int
    stop: int
    total: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def share_bounds(total: int, rank: int, size: int) -> tuple[int, int]:
    """Rows ``[r·B//K, (r+1)·B//K)`` of a batch of B rows for rank r of K."""
    return total * rank // size, total * (rank + 1) // size


@dataclass
class World:
    """The processes training together: this one's ``rank`` of ``size``.

    ``comm`` is mpi4py's ``COMM_WORLD`` (None for a single process). ``share`` is this
    rank's part of the batch being trained on (set by ``ShardedLoader``).
    """

    rank: int = 0
    size: int = 1
    comm: Any = None
    share: BatchShare | None = field(default=None, repr=False)
    one_machine: bool = True  # every rank shares this machine's memory

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files and prints."""
        return self.rank == 0

    def allreduce_sum(self, buffer: np.ndarray) -> np.ndarray:
        """Sum a contiguous array over all ranks, in place; returns it."""
        if self.comm is not None:
            from mpi4py import MPI

            self.comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        return buffer

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object) on every rank."""
        return value if self.comm is None else self.comm.bcast(value, root=0)

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.comm is not None:
            self.comm.Barrier()

    def abort(self, message: str, code: int = 1) -> None:
        """Print ``message`` for this rank and stop every rank (``MPI_Abort``)."""
        where = f"chainrule.distributed: rank {self.rank} of {self.size}"
        print(f"{where}: {message.rstrip()}\n{where}: stopping all {self.size} ranks",
              file=sys.stderr, flush=True)
        sys.stdout.flush()
        if self.comm is not None:
            self.comm.Abort(code)
        raise SystemExit(code)  # (a single process: no other rank to stop)

    @contextmanager
    def stop_all_on_failure(self, describe: Callable[[BaseException], tuple[str, int]]
                            | None = None) -> Iterator[None]:
        """Any exception (or ``sys.exit`` with a failure status) inside stops every rank.

        ``describe(error)`` returns the message and exit status to report (by default
        the traceback, status 1; 130 for Ctrl-C). With one process it does nothing.
        """
        try:
            yield
        except SystemExit as error:
            if self.size == 1 or error.code in (0, None):
                raise
            self.abort(f"exited with status {error.code}",
                       error.code if isinstance(error.code, int) else 1)
        except BaseException as error:
            if self.size == 1:
                raise
            message, code = (describe or describe_failure)(error)
            self.abort(message, code)


def describe_failure(error: BaseException) -> tuple[str, int]:
    """What a failing rank reports, and its exit status: Ctrl-C as an interruption
    (130), anything else with its traceback (1)."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C)", 130
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return f"failed:\n{text.rstrip()}", 1


_world: World | None = None


def launched_size(environ: dict[str, str] | None = None) -> int:
    """How many processes the MPI launcher started (1 when not started by one)."""
    environ = os.environ if environ is None else environ
    for name in LAUNCHER_SIZE_VARIABLES:
        value = environ.get(name, "")
        if value.strip().isdigit():
            return int(value)
    return 1


def init() -> World:
    """Join the other ranks; returns this process's ``World`` (the same one every call).

    A process not started by ``mpiexec`` (or started alone) is world size 1 and loads
    no MPI. Under K > 1 ranks, ``mpi4py`` is imported (``DistributedUnavailable``, with
    the install command, when it is missing) and an uncaught exception or Ctrl-C on any
    rank stops all of them (``sys.excepthook`` calls ``MPI_Abort``).
    """
    global _world
    if _world is not None:
        return _world
    if launched_size() <= 1:
        _world = World()
        return _world
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise DistributedUnavailable(
            f"this process was started by mpiexec with {launched_size()} processes, but "
            f"mpi4py cannot be imported ({error}); install the MPI extra: {INSTALL_HINT}"
        ) from None
    comm = MPI.COMM_WORLD
    # the ranks that share memory with this one: all of them, or not
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    one_machine = local.Get_size() == comm.Get_size()
    local.Free()
    _world = World(comm.Get_rank(), comm.Get_size(), comm if comm.Get_size() > 1 else None,
                   one_machine=one_machine)
    if _world.size > 1:
        sys.excepthook = _abort_on_uncaught
    return _world


def _abort_on_uncaught(kind: type[BaseException], error: BaseException, tb: Any) -> None:
    """``sys.excepthook`` under K > 1: report, then stop every rank instead of leaving
    the others waiting for this one in a collective operation for ever."""
    assert _world is not None
    message, code = describe_failure(error.with_traceback(tb))
    _world.abort(message, code)


def _world_or_init(world: World | None) -> World:
    return world if world is not None else init()


# --------------------------------------------------------------------------- state
def broadcast_state(model: Any, world: World | None = None) -> None:
    """Copy rank 0's parameters, buffers and random generators' states to every rank,
    so that all start as one model (even one initialised without a seed)."""
    world = _world_or_init(world)
    if world.size == 1:
        return
    tensors = [p for _, p in model.named_parameters()] + [b for _, b in model.named_buffers()]
    for tensor in tensors:
        array = tensor.data
        if not array.flags.c_contiguous:
            tensor.data = array = np.ascontiguousarray(array)
        world.comm.Bcast(array, root=0)
    states = world.broadcast({name: g.bit_generator.state
                              for name, g in model.named_generators()})
    for name, generator in model.named_generators():
        if name in states:
            generator.bit_generator.state = states[name]


# --------------------------------------------------------------------------- loader
class ShardedLoader:
    """This rank's slice of every global batch of ``loader`` (see the module's notes).

    ``len()``, ``state_dict()`` and ``load_state_dict()`` are the wrapped loader's, so
    a checkpoint resumes the same global order; the wrapped loader's random state is
    rank 0's (broadcast here), so all ranks shuffle alike even without a seed. Each rank
    fetches the whole global batch and keeps its rows: the same rows, whichever way the
    dataset computes them.
    """

    def __init__(self, loader: Any, world: World | None = None) -> None:
        self.loader = loader
        self.world = _world_or_init(world)
        batch_size = getattr(loader, "batch_size", None)
        if isinstance(batch_size, int) and batch_size < self.world.size:
            raise ValueError(
                f"a batch of {batch_size} cannot be shared by {self.world.size} ranks: "
                f"every rank needs a row of every full batch; use a batch size of at "
                f"least {self.world.size} (it is the global batch, split across ranks)")
        if self.world.size > 1 and hasattr(loader, "state_dict"):
            loader.load_state_dict(self.world.broadcast(loader.state_dict()))

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        world = self.world
        try:
            for batch in self.loader:
                fields = batch if isinstance(batch, tuple) else (batch,)
                total = len(fields[0])
                start, stop = share_bounds(total, world.rank, world.size)
                world.share = BatchShare(start, stop, total)
                mine = tuple(as_tensor(f.data[start:stop]) for f in fields)
                yield mine if isinstance(batch, tuple) else mine[0]
        finally:
            world.share = None

    def state_dict(self) -> dict[str, Any]:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loader.load_state_dict(state)


# --------------------------------------------------------------------------- loss
class _GlobalMean(Function):
    """L = Σ_r w_r·L_r over the ranks, w_r = n_r/B (all-reduced); dL/dL_r = w_r."""

    rule = "L = Σ_r w_r·L_r; dL_r = w_r·dL"

    def __init__(self, world: World, weight: float) -> None:
        self.world, self.weight = world, weight

    def forward(self, local):
        total = np.array([float(local) * self.weight])
        self.world.allreduce_sum(total)
        return np.asarray(total[0], dtype=local.dtype)

    def backward(self, g):
        return g * self.weight


def global_mean_loss(loss_fn: Callable[..., Tensor], world: World | None = None
                     ) -> Callable[..., Tensor]:
    """``loss_fn`` (a mean over the batch's samples) made the mean over the global
    batch: its value is the same on every rank (so the NaN and divergence checks agree)
    and its gradient is this rank's part of the global batch's gradient. A rank with no
    rows of a batch contributes 0 and still runs backward (batch norm needs it)."""
    world = _world_or_init(world)
    if world.size == 1:
        return loss_fn

    def loss(output: Tensor, *targets: Any) -> Tensor:
        share = world.share
        if share is None:  # outside a ShardedLoader (evaluation): the plain loss
            return loss_fn(output, *targets)
        local = loss_fn(output, *targets) if share.size else (output * 0.0).sum()
        return _GlobalMean(world, share.size / share.total)(local)

    return loss


# --------------------------------------------------------------------------- optimiser
class DistributedOptimizer:
    """Wraps an optimiser: ``step()`` first sums the gradients over the ranks, then
    clips them (``clip_grad_norm``, the global norm), then steps. Everything else
    (``zero_grad``, ``param_groups``, ``state_dict``...) is the wrapped optimiser's.

    How the gradients travel, the faster way for where the ranks run (measured by
    benchmarks/bench_distributed.py):

    * all ranks on one machine (shared memory): one ``Allreduce`` per gradient, in
      place, with no copies. On a 2-core machine a SimpleConvNet step's all-reduce
      took 1.06 ms this way against 1.76 ms through one flat buffer (5 % of the step
      instead of 9 %), an MLP 784-256-256-10's 0.54 against 1.04 ms;
    * across machines: the gradients packed into one flat buffer per dtype, one
      ``Allreduce`` each. Over a network every ``Allreduce`` pays the latency
      2(K-1) times, which one buffer pays once (ring model, 8 machines, 10 Gbit/s,
      50 µs: 49 ms a step for a TransformerLM's 53 tensors per tensor, 12 ms flat).

    A parameter without a gradient on every rank keeps none.
    """

    def __init__(self, optimizer: Any, world: World | None = None,
                 clip_grad_norm: float | None = None) -> None:
        self.optimizer = optimizer
        self.world = _world_or_init(world)
        self.clip_grad_norm = clip_grad_norm
        self._buffers: dict[np.dtype, np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["optimizer"], name)

    def _params(self) -> list[Tensor]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def allreduce_gradients(self) -> None:
        """Sum every parameter's gradient over the ranks (in place): one ``Allreduce``
        per gradient when all ranks share one machine, else one per dtype of a flat
        buffer (see the class's doc)."""
        if self.world.size == 1:
            return
        params = self._params()
        if self.world.one_machine:
            self._allreduce_each(params)
            return
        by_dtype: dict[np.dtype, list[Tensor]] = {}
        for p in params:
            by_dtype.setdefault(np.dtype(p.dtype), []).append(p)
        for dtype, group in by_dtype.items():
            self._allreduce_flat(dtype, group)

    def _allreduce_each(self, params: list[Tensor]) -> None:
        """One in-place ``Allreduce`` per gradient, after one of the "has a gradient"
        flags (a rank without a gradient adds zeros)."""
        flags = np.array([p.grad is not None for p in params], dtype=np.int32)
        self.world.allreduce_sum(flags)
        grads: dict[int, np.ndarray] = {}
        for p, flag in zip(params, flags):
            if flag == 0:
                continue
            if p.grad is None:
                p.grad = Tensor(np.zeros(p.shape, dtype=p.dtype))
            grad = p.grad.data
            # summed in place: a gradient that is a view, or another parameter's array
            # too, would be summed twice, so it gets its own copy (before any sum)
            if grad.base is not None or id(grad) in grads or not grad.flags.c_contiguous:
                grad = np.array(grad, order="C")
                p.grad = Tensor._wrap(grad)
            grads[id(grad)] = grad
        for grad in grads.values():
            self.world.allreduce_sum(grad)

    def _allreduce_flat(self, dtype: np.dtype, params: list[Tensor]) -> None:
        """The gradients of ``params`` (one dtype) packed into one buffer with one
        "has a gradient" flag each, summed by one ``Allreduce``, and unpacked."""
        size = sum(p.size for p in params) + len(params)
        buffer = self._buffers.get(dtype)
        if buffer is None or buffer.size != size:
            buffer = self._buffers[dtype] = np.empty(size, dtype=dtype)
        offset = 0
        flags = buffer[size - len(params):]
        for i, p in enumerate(params):
            part = buffer[offset:offset + p.size]
            if p.grad is None:
                part.fill(0)
                flags[i] = 0
            else:
                part[...] = p.grad.data.reshape(-1)
                flags[i] = 1
            offset += p.size
        self.world.allreduce_sum(buffer)
        offset = 0
        for i, p in enumerate(params):
            summed = buffer[offset:offset + p.size].reshape(p.shape)
            offset += p.size
            if flags[i] == 0:
                continue
            if p.grad is None:
                p.grad = Tensor(summed)  # (a copy: the buffer is reused)
            else:
                np.copyto(p.grad.data, summed)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        if closure is not None:
            raise ValueError("DistributedOptimizer.step() takes no closure: the gradients "
                             "are summed over the ranks once, after backward()")
        self.allreduce_gradients()
        if self.clip_grad_norm is not None:
            from chainrule.optim.clip import clip_grad_norm_

            clip_grad_norm_(self._params(), self.clip_grad_norm)
        return self.optimizer.step()

    def __repr__(self) -> str:
        return f"DistributedOptimizer({self.optimizer!r}, ranks={self.world.size})"


# --------------------------------------------------------------------------- batch norm
class _SyncBatchNormFunction(Function):
    """Batch norm with statistics over the global batch (all ranks' rows).

    Forward: μ = Σ_all x / N, σ² = Σ_all x² / N - μ² (sums in float64, one all-reduce).
    Backward: dx = (γ/σ)·(dy - Σ_all dy/N - x̂·Σ_all(dy·x̂)/N) (one all-reduce), where dy
    is the gradient of the global loss; dγ = Σ_local dy·x̂, dβ = Σ_local dy (this rank's
    parts, summed with the other gradients by ``DistributedOptimizer``).
    """

    rule = ("μ, σ² over all ranks; dx = γ/σ·(dy - Σ_all dy/N - x̂·Σ_all(dy·x̂)/N); "
            "dγ = Σ dy·x̂; dβ = Σ dy")

    def __init__(self, world: World, has_weight: bool, has_bias: bool, eps: float) -> None:
        self.world, self.has_weight, self.has_bias, self.eps = world, has_weight, has_bias, eps

    def forward(self, x, *params):
        channels = x.shape[1]
        self.axes = (0,) + tuple(range(2, x.ndim))
        self.param_shape = (1, channels) + (1,) * (x.ndim - 2)
        sums = np.empty(2 * channels + 1)
        sums[:channels] = x.sum(self.axes, dtype=np.float64)
        sums[channels:2 * channels] = np.square(x, dtype=np.float64).sum(self.axes)
        sums[-1] = x.size // channels if channels else 0
        self.world.allreduce_sum(sums)
        self.count = count = int(sums[-1])
        if count < 2:
            raise ValueError(f"batch_norm: training needs more than one value per channel "
                             f"to estimate a variance, got {count} over all ranks")
        mean = sums[:channels] / count
        var = np.maximum(sums[channels:2 * channels] / count - mean * mean, 0.0)
        self.mean, self.var = mean, var
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype).reshape(self.param_shape)
        xhat = (x - mean.astype(x.dtype).reshape(self.param_shape)) * inv_std
        self.xhat, self.inv_std = xhat, inv_std
        y = xhat
        if self.has_weight:
            y = y * params[0].reshape(self.param_shape)
        if self.has_bias:
            y = y + params[-1].reshape(self.param_shape)
        return y

    def backward(self, g):
        if is_grad_enabled():
            raise NotImplementedError("a second derivative through synchronised batch "
                                      "norm is not supported")
        dy = g.data
        xhat, channels = self.xhat, self.xhat.shape[1]
        dxhat = dy * self.inputs[1].data.reshape(self.param_shape) if self.has_weight else dy
        grads: list[Tensor | None] = [None]
        if self.needs_input_grad[0]:
            sums = np.concatenate([dxhat.sum(self.axes, dtype=np.float64),
                                   (dxhat * xhat).sum(self.axes, dtype=np.float64)])
            self.world.allreduce_sum(sums)
            mean_g = (sums[:channels] / self.count).astype(dy.dtype).reshape(self.param_shape)
            mean_gx = (sums[channels:] / self.count).astype(dy.dtype).reshape(
                self.param_shape)
            grads[0] = Tensor._wrap(self.inv_std * (dxhat - mean_g - xhat * mean_gx))
        if self.has_weight:
            grads.append(Tensor._wrap((dy * xhat).sum(self.axes)))
        if self.has_bias:
            grads.append(Tensor._wrap(dy.sum(self.axes)))
        return tuple(grads)


class _SyncBatchNorm:
    """Mixed into a batch-norm layer's class by ``sync_batch_norm``: in training, the
    statistics of the global batch; in evaluation, the running ones as before."""

    _world: World

    def forward(self, x: Any) -> Tensor:
        if not self.training:
            return super().forward(x)
        from chainrule.nn.module import as_input

        x = as_input(x, self.running_mean)
        if x.ndim not in self._shapes or x.shape[1] != self.num_features:
            return super().forward(x)  # (its clear error about the shape)
        params = [p for p in (self.weight, self.bias) if p is not None]
        fn = _SyncBatchNormFunction(self._world, self.weight is not None,
                                    self.bias is not None, self.eps)
        y = fn(x, *params)
        update_running_stats(self.running_mean, self.running_var, fn.mean, fn.var,
                             fn.count, self.count_batch())
        return y


_sync_classes: dict[type, type] = {}


def sync_batch_norm(model: Any, world: World | None = None) -> Any:
    """Make every batch-norm layer of ``model`` take its training statistics over the
    global batch (in place; returns the model). Names, parameters and ``state_dict``
    stay the same: only the layers' classes become ``Sync<Name>``."""
    from chainrule.nn.normalization import _BatchNorm

    world = _world_or_init(world)
    if world.size == 1:
        return model
    for module in model.modules():
        cls = type(module)
        if isinstance(module, _BatchNorm) and not isinstance(module, _SyncBatchNorm):
            if cls not in _sync_classes:
                _sync_classes[cls] = type(f"Sync{cls.__name__}", (_SyncBatchNorm, cls), {})
            module.__class__ = _sync_classes[cls]
            module._world = world
    return model


# --------------------------------------------------------------------------- dropout
class _GlobalBatchGenerator(np.random.Generator):
    """A generator sharing another's bit stream, whose ``random(shape)`` for this rank's
    rows of a batch draws the values of the whole global batch (as one process would)
    and returns this rank's rows."""

    def __init__(self, bit_generator: Any, world: World) -> None:
        super().__init__(bit_generator)
        self._world = world

    def random(self, size: Any = None, dtype: Any = np.float64, out: Any = None) -> Any:
        share = self._world.share
        if share is None or size is None or out is not None:
            return super().random(size, dtype=dtype, out=out)
        shape = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
        if not shape or shape[0] != share.size:
            raise RuntimeError(
                f"a random layer asked for values of shape {shape}, but this rank holds "
                f"{share.size} rows of the batch: under several ranks, random layers must "
                "draw one value set per sample on axis 0")
        full = super().random((share.total,) + shape[1:], dtype=dtype)
        return full[share.start:share.stop]

    def __reduce__(self) -> Any:  # copies (deepcopy, pickle) are plain generators
        return (np.random.Generator, (self.bit_generator,))


def sync_dropout(model: Any, world: World | None = None) -> Any:
    """Make every random generator of ``model`` (dropout's) draw for the global batch
    and hand this rank its rows (in place; returns the model). Generators shared by
    several layers stay shared."""
    world = _world_or_init(world)
    if world.size == 1:
        return model
    replaced: dict[int, np.random.Generator] = {}
    for module in model.modules():
        for attr, value in list(vars(module).items()):
            if isinstance(value, np.random.Generator) and \
                    not isinstance(value, _GlobalBatchGenerator):
                if id(value) not in replaced:
                    replaced[id(value)] = _GlobalBatchGenerator(value.bit_generator, world)
                setattr(module, attr, replaced[id(value)])
    return model


# --------------------------------------------------------------------------- metrics
class GlobalMetrics(Callback):
    """A ``fit`` callback (give it first): the epoch's ``train_loss`` becomes the mean
    over the global batches (their losses, weighted by their sizes, as one process
    counts them) and ``train_accuracy`` the fraction of all ranks' rows predicted
    right."""

    def __init__(self, world: World | None = None) -> None:
        self.world = _world_or_init(world)
        self._reset()

    def _reset(self) -> None:
        self._loss_sum = self._rows = self._my_rows = 0.0

    def on_batch_end(self, iteration: int, loss: float) -> None:
        share = self.world.share
        if share is not None:
            self._loss_sum += loss * share.total
            self._rows += share.total
            self._my_rows += share.size

    def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
        if self._rows:
            record["train_loss"] = self._loss_sum / self._rows
            if "train_perplexity" in record:
                record["train_perplexity"] = perplexity(record["train_loss"])
            if "train_accuracy" in record:
                correct = np.array([round(record["train_accuracy"] * self._my_rows)],
                                   dtype=np.float64)
                self.world.allreduce_sum(correct)
                record["train_accuracy"] = float(correct[0]) / self._rows
        self._reset()


# --------------------------------------------------------------------------- all at once
@dataclass
class Prepared:
    """What ``fit`` gets under K ranks (``prepare``)."""

    world: World
    loss_fn: Callable[..., Tensor]
    optimizer: Any
    train_loader: Any
    callbacks: Sequence[Any]
    clip_grad_norm: float | None


def prepare(model: Any, loss_fn: Callable[..., Tensor], optimizer: Any, train_loader: Any,
            clip_grad_norm: float | None = None, world: World | None = None) -> Prepared:
    """Everything data-parallel training needs, in one call: rank 0's state broadcast,
    batch norm and dropout over the global batch, the loader sharded, the loss made the
    global mean, the optimiser summing gradients (and clipping after the sum), and the
    ``GlobalMetrics`` callback. With one process, everything is returned unchanged
    (and clipping is left to ``fit``)."""
    world = _world_or_init(world)
    if world.size == 1:
        return Prepared(world, loss_fn, optimizer, train_loader, [], clip_grad_norm)
    broadcast_state(model, world)
    sync_batch_norm(model, world)
    sync_dropout(model, world)
    return Prepared(world, global_mean_loss(loss_fn, world),
                    DistributedOptimizer(optimizer, world, clip_grad_norm),
                    ShardedLoader(train_loader, world), [GlobalMetrics(world)], None)

"""Run by tests/test_distributed.py under ``mpiexec -n K``: checks that need several
ranks at once. ``python tests/_distributed_worker.py CHECK [FOLDER]``; every rank runs
the same check, a failed assertion on any rank stops them all (exit status not 0)."""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from chainrule import distributed, nn, optim
from chainrule.data import DataLoader, TensorDataset
from chainrule.tensor import Tensor


def _allgather(world, value):
    return world.comm.allgather(value)


def check_sampler(world) -> None:
    """Two epochs of a shuffled loader without a seed (each rank's own entropy): the
    ranks' shares are disjoint, together the epoch, each global batch the one-process
    batch, and the loader's order is rank 0's."""
    n, batch = 103, 10
    dataset = TensorDataset(np.arange(n))
    loader = distributed.ShardedLoader(DataLoader(dataset, batch_size=batch, shuffle=True),
                                       world)
    reference = DataLoader(dataset, batch_size=batch, shuffle=True)
    reference.load_state_dict(loader.state_dict())  # (rank 0's state, broadcast)
    for _ in range(2):
        mine = [b.data.copy() for (b,) in loader]
        assert len(mine) == len(loader) == 11
        everyone = _allgather(world, mine)
        expected = [b.data for (b,) in reference]
        for step, global_batch in enumerate(expected):
            parts = [everyone[r][step] for r in range(world.size)]
            assert np.array_equal(np.concatenate(parts), global_batch), step
            sizes = [len(p) for p in parts]
            assert max(sizes) - min(sizes) <= 1, sizes
        all_seen = np.concatenate([np.concatenate(m) for m in everyone])
        assert np.array_equal(np.sort(all_seen), np.arange(n))  # disjoint, complete
    assert world.share is None


def check_batch_norm(world) -> None:
    """Synchronised batch norm on each rank's rows equals batch norm of the global
    batch: outputs, running statistics, gradients (float64 central differences and
    PyTorch on the whole batch)."""
    import torch

    rng = np.random.default_rng(0)
    total, channels = 11, 3
    x_all = rng.normal(2.0, 3.0, (total, channels, 2)).astype(np.float64)
    dy_all = rng.normal(size=x_all.shape)
    start, stop = distributed.share_bounds(total, world.rank, world.size)
    world.share = distributed.BatchShare(start, stop, total)

    bn = nn.BatchNorm1d(channels, dtype=np.float64)
    bn.weight.data[:] = [0.5, 2.0, -1.0]
    bn.bias.data[:] = [0.1, -0.2, 0.3]
    distributed.sync_batch_norm(bn, world)
    x = Tensor(x_all[start:stop], requires_grad=True)
    y = bn(x)
    (y * Tensor(dy_all[start:stop])).sum().backward()
    grads = np.concatenate([bn.weight.grad.data, bn.bias.grad.data])
    world.allreduce_sum(grads)  # the parameters' gradients: the ranks' parts summed

    tb = torch.nn.BatchNorm1d(channels, dtype=torch.float64)
    with torch.no_grad():
        tb.weight[:] = torch.tensor([0.5, 2.0, -1.0], dtype=torch.float64)
        tb.bias[:] = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    tx = torch.tensor(x_all, requires_grad=True)
    ty = tb(tx)
    (ty * torch.tensor(dy_all)).sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy()[start:stop], atol=1e-12)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy()[start:stop], atol=1e-10)
    np.testing.assert_allclose(grads, np.concatenate([tb.weight.grad.numpy(),
                                                      tb.bias.grad.numpy()]), atol=1e-10)
    np.testing.assert_allclose(bn.running_mean.data, tb.running_mean.numpy(), atol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, tb.running_var.numpy(), atol=1e-12)
    bn.eval()  # evaluation: the running statistics, no communication
    np.testing.assert_allclose(bn(Tensor(x_all)).data, tb.eval()(tx).detach().numpy(),
                               atol=1e-12)
    bn.train()

    # central differences of the global loss Σ_all dy·y, over elements of every rank
    def global_loss(x_mine: np.ndarray) -> float:
        out = bn(Tensor(x_mine))
        value = np.array([float((out.data * dy_all[start:stop]).sum())])
        return float(world.allreduce_sum(value)[0])

    h = 1e-6
    for owner in range(world.size):
        for flat in (0, 3, 5):
            x_plus, x_minus = x_all[start:stop].copy(), x_all[start:stop].copy()
            mine = world.rank == owner
            if mine:
                x_plus.reshape(-1)[flat] += h
                x_minus.reshape(-1)[flat] -= h
            numeric = (global_loss(x_plus) - global_loss(x_minus)) / (2 * h)
            if mine:
                assert abs(numeric - x.grad.data.reshape(-1)[flat]) < 1e-6, (owner, flat)


def check_training_pieces(world) -> None:
    """The pieces below with each of DistributedOptimizer's ways to sum: one
    all-reduce per gradient (the ranks on one machine, as here) and one flat buffer
    (across machines)."""
    for one_machine in (True, False):
        world.one_machine = one_machine
        _check_training_pieces(world)
        _check_shared_gradient_arrays(world)
    world.one_machine = True


def _check_shared_gradient_arrays(world) -> None:
    """Two parameters whose gradients are one array, and a gradient that is a view:
    each is summed once."""
    a = nn.Parameter(np.zeros(3, dtype=np.float32))
    b = nn.Parameter(np.zeros(3, dtype=np.float32))
    c = nn.Parameter(np.zeros((2, 3), dtype=np.float32))
    opt = distributed.DistributedOptimizer(optim.SGD([a, b, c], lr=1.0), world)
    shared = np.full(3, world.rank + 1.0, dtype=np.float32)
    a.grad, b.grad = Tensor._wrap(shared), Tensor._wrap(shared)
    c.grad = Tensor._wrap(np.full((3, 2), world.rank + 1.0, dtype=np.float32).T)
    opt.allreduce_gradients()
    expected = world.size * (world.size + 1) / 2
    for p in (a, b, c):
        np.testing.assert_array_equal(p.grad.data, np.full(p.shape, expected))


def _check_training_pieces(world) -> None:
    """broadcast_state (rank 1 starts from other weights), global_mean_loss's value and
    gradient, DistributedOptimizer's sum (a parameter without a gradient anywhere keeps
    none), and a rank with no rows of a batch."""
    model = nn.MLP([4, 5, 3], seed=world.rank)  # different weights on every rank
    distributed.broadcast_state(model, world)
    for _, p in model.named_parameters():
        gathered = _allgather(world, p.data)
        assert all(np.array_equal(g, gathered[0]) for g in gathered)
    unused = nn.Parameter(np.zeros(2, dtype=np.float32))
    opt = distributed.DistributedOptimizer(
        optim.SGD([*model.parameters(), unused], lr=1.0), world)
    rng = np.random.default_rng(1)
    total = world.size + 1  # the last rank gets 2 rows, the others 1
    x_all = rng.normal(size=(total, 4)).astype(np.float32)
    t_all = rng.integers(0, 3, total)
    start, stop = distributed.share_bounds(total, world.rank, world.size)
    world.share = distributed.BatchShare(start, stop, total)
    loss_fn = distributed.global_mean_loss(nn.CrossEntropyLoss(), world)
    loss = loss_fn(model(Tensor(x_all[start:stop])), Tensor(t_all[start:stop]))
    opt.zero_grad()
    loss.backward()
    opt.allreduce_gradients()
    reference = nn.MLP([4, 5, 3], seed=0)
    ref_loss = nn.CrossEntropyLoss()(reference(Tensor(x_all)), Tensor(t_all))
    ref_loss.backward()
    assert abs(float(loss.item()) - float(ref_loss.item())) < 1e-6
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        np.testing.assert_allclose(p.grad.data, q.grad.data, atol=1e-6, err_msg=name)
    assert unused.grad is None

    # a batch smaller than the world: some ranks have no rows and still take part
    world.share = distributed.BatchShare(0, 1, 1) if world.is_main \
        else distributed.BatchShare(1, 1, 1)
    rows = slice(0, 1) if world.is_main else slice(0, 0)
    loss = loss_fn(model(Tensor(x_all[rows])), Tensor(t_all[rows]))
    opt.zero_grad()
    loss.backward()
    opt.allreduce_gradients()
    reference.zero_grad()
    nn.CrossEntropyLoss()(reference(Tensor(x_all[:1])), Tensor(t_all[:1])).backward()
    assert np.isfinite(float(loss.item()))
    np.testing.assert_allclose(model.layers[0].weight.grad.data,
                               reference.layers[0].weight.grad.data, atol=1e-6)
    world.share = None


def crash(world) -> None:
    """Rank 1 fails in the middle of training while rank 0 waits in an all-reduce."""
    _train_forever(world, fail_rank=1)


def wait_for_interrupt(world, folder: str) -> None:
    """Train until interrupted; each rank writes its pid where the test finds it."""
    with open(os.path.join(folder, f"rank{world.rank}.pid"), "w") as f:
        f.write(str(os.getpid()))
    _train_forever(world, fail_rank=None)


def _train_forever(world, fail_rank: int | None) -> None:
    model = nn.MLP([8, 16, 3], seed=0)
    run = distributed.prepare(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(),
                                                                      lr=0.01),
                              DataLoader(TensorDataset(np.ones((40, 8), np.float32),
                                                       np.zeros(40, np.int64)),
                                         batch_size=8), world=world)
    started = time.monotonic()
    steps = 0
    while time.monotonic() - started < 60:
        for x, t in run.train_loader:
            loss = run.loss_fn(model(x), t)
            run.optimizer.zero_grad()
            loss.backward()
            steps += 1
            if world.rank == fail_rank and steps == 20:
                raise RuntimeError("this rank failed on purpose")
            run.optimizer.step()
    raise SystemExit("not stopped within 60 s")


if __name__ == "__main__":
    world = distributed.init()
    assert world.size > 1, "run me under mpiexec -n K (K > 1)"
    check, *args = sys.argv[1:]
    if check == "checks":
        for fn in (check_sampler, check_batch_norm, check_training_pieces):
            fn(world)
        world.barrier()
        if world.is_main:
            print(f"all checks passed on {world.size} ranks")
    else:
        {"crash": crash, "interrupt": wait_for_interrupt}[check](world, *args)

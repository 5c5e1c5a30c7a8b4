"""Data-parallel training on a dask cluster: the digits classifier, each batch split across
the workers, against the numpy backend from the same seed.

    python -m fusion.examples.dask_digits                    # a LocalCluster of 2 processes
    python -m fusion.examples.dask_digits --scheduler tcp://host:8786   # a running cluster

Each batch enters the dask backend cut along its first axis into one chunk per worker
(``chunks`` = batch size / workers rows), so every worker runs the forward and backward pass
of its part of the batch; the weight gradients, sums over the batch, are added across the
chunks by dask, and the optimizer step keeps the weights and Adam's state on the workers.
The same run on the numpy backend gives the same losses (to float32 rounding: dask adds the
chunks' partial sums in another order) and the same accuracy.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time

import numpy as np

import fusion
from fusion import nn, optim
from fusion.data import DataLoader, TensorDataset
from fusion.examples.digits import build_model, load_splits


def train(backend: str, epochs: int = 3, batch_size: int = 128, seed: int = 0,
          hidden: tuple[int, ...] = (64,), lr: float = 2e-3) -> dict:
    """Train on ``backend``; the per-step losses, the test accuracy and the seconds taken."""
    data = load_splits(seed)
    X_train, y_train = data["train"]
    X_test, y_test = data["test"]
    with fusion.use_backend(backend):
        fusion.manual_seed(seed)
        model = build_model(X_train.shape[1], list(hidden), 10)
        optimizer = optim.Adam(model.parameters(), lr=lr)
        loss_fn = nn.CrossEntropyLoss()
        loader = DataLoader(TensorDataset(X_train, y_train), batch_size=batch_size,
                            shuffle=True, seed=seed, drop_last=True)
        losses, started = [], time.perf_counter()
        for _ in range(epochs):
            for x, y in loader:
                loss = loss_fn(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss)
            # the epoch's losses come back in one computation, not one round trip per step
            fusion.persist(*losses[-len(loader):])
        seconds = time.perf_counter() - started
        with fusion.no_grad():
            logits = model(fusion.Tensor(X_test))
        predicted = logits.numpy().argmax(axis=1)
    return {"losses": np.array([float(loss.item()) for loss in losses]),
            "accuracy": float(np.mean(predicted == y_test)), "seconds": seconds,
            "steps": len(losses)}


@contextlib.contextmanager
def local_cluster(workers: int = 2, memory_limit: str = "1GiB"):
    """A ``distributed.LocalCluster`` of ``workers`` single-threaded processes on the loopback
    interface, and a client that is the default while the block runs."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0",
                      memory_limit=memory_limit, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client


def data_parallel(client, batch_size: int, **kwargs) -> dict:
    """:func:`train` on the dask backend with each batch split evenly across the workers of
    ``client`` (the default client while it runs)."""
    from fusion.backends import dask as fusion_dask

    workers = max(1, len(client.nthreads()))
    previous = fusion_dask.configure(scheduler="auto", chunks=-(-batch_size // workers))
    try:
        return train("dask", batch_size=batch_size, **kwargs)
    finally:
        fusion_dask.configure(**vars(previous))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fusion.examples.dask_digits",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes of the local cluster (default %(default)s)")
    parser.add_argument("--scheduler", default=None,
                        help="address of a running dask scheduler instead of a local cluster")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    options = {"epochs": args.epochs, "seed": args.seed}

    reference = train("numpy", batch_size=args.batch_size, **options)
    if args.scheduler:
        from distributed import Client

        with Client(args.scheduler) as client:
            result = data_parallel(client, args.batch_size, **options)
            where = args.scheduler
    else:
        with local_cluster(args.workers) as client:
            result = data_parallel(client, args.batch_size, **options)
            where = f"a local cluster of {args.workers} worker processes"
    gap = float(np.max(np.abs(result["losses"] - reference["losses"])))
    print(f"{result['steps']} steps of batch {args.batch_size} on {where}")
    print(f"numpy: test accuracy {reference['accuracy']:.4f}, {reference['seconds']:.2f} s")
    print(f"dask:  test accuracy {result['accuracy']:.4f}, {result['seconds']:.2f} s")
    print(f"largest difference of a step's loss: {gap:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Samplers, DataLoader, train_test_split and StandardScaler, checked against numpy."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fusion
from fusion.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    StandardScaler,
    TensorDataset,
    default_collate,
    train_test_split,
)


def numbered(n=10, width=2):
    """Rows that say which sample they are: X[i] = (i, 100 + i, ...), y[i] = i."""
    X = np.arange(n, dtype=np.float32)[:, None] + 100 * np.arange(width, dtype=np.float32)
    return X, np.arange(n, dtype=np.int64)


# --- samplers -----------------------------------------------------------------------------------
def test_sequential_sampler():
    assert list(SequentialSampler(4)) == [0, 1, 2, 3]
    assert len(SequentialSampler([7, 8, 9])) == 3
    assert list(SequentialSampler(0)) == []


def test_random_sampler_is_a_permutation_reproducible_by_seed():
    a, b = RandomSampler(50, seed=3), RandomSampler(50, seed=3)
    first_a, second_a = list(a), list(a)
    assert sorted(first_a) == list(range(50)) and len(a) == 50
    assert first_a == list(b) and second_a == list(b)  # the same sequence of passes
    assert first_a != second_a  # each pass a new order
    assert list(RandomSampler(50, seed=4)) != first_a


def test_random_sampler_follows_fusion_manual_seed_without_a_seed():
    fusion.manual_seed(11)
    first = list(RandomSampler(30))
    fusion.manual_seed(11)
    assert list(RandomSampler(30)) == first
    assert list(RandomSampler(30, generator=np.random.default_rng(5))) == list(
        np.random.default_rng(5).permutation(30))


def test_random_sampler_with_replacement_and_errors():
    drawn = list(RandomSampler(3, replacement=True, num_samples=40, seed=0))
    assert len(drawn) == 40 and set(drawn) <= {0, 1, 2} and len(set(drawn)) == 3
    assert len(RandomSampler(10, num_samples=4, seed=0)) == 4
    assert len(set(RandomSampler(10, num_samples=4, seed=0))) == 4
    with pytest.raises(ValueError, match="without replacement"):
        RandomSampler(3, num_samples=4)
    with pytest.raises(ValueError, match="seed or a generator"):
        RandomSampler(3, seed=1, generator=np.random.default_rng())


@pytest.mark.parametrize(("n", "size", "drop_last", "batches", "last"), [
    (10, 3, False, 4, 1),
    (10, 3, True, 3, 3),
    (9, 3, False, 3, 3),
    (9, 3, True, 3, 3),
    (2, 5, False, 1, 2),
    (2, 5, True, 0, None),
    (0, 4, False, 0, None),
])
def test_batch_sampler_lengths_and_last_batch(n, size, drop_last, batches, last):
    sampler = BatchSampler(SequentialSampler(n), size, drop_last)
    got = list(sampler)
    assert len(sampler) == batches == len(got)
    if got:
        assert len(got[-1]) == last
        assert all(len(b) == size for b in got[:-1])
        assert [i for b in got for i in b] == list(range(len(got) * size if drop_last else n))


def test_batch_sampler_over_a_random_sampler_keeps_its_order():
    order = list(RandomSampler(11, seed=9))
    batches = list(BatchSampler(RandomSampler(11, seed=9), 4, False))
    assert [i for b in batches for i in b] == order
    with pytest.raises(ValueError, match="positive int"):
        BatchSampler(SequentialSampler(3), 0, False)


def test_a_custom_sampler():
    class Reversed(Sampler):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n - 1, -1, -1))

        def __len__(self):
            return self.n

    X, y = numbered(5)
    loader = DataLoader(TensorDataset(X, y), batch_size=2, sampler=Reversed(5))
    assert [b[1].tolist() for b in loader] == [[4, 3], [2, 1], [0]]


# --- DataLoader ---------------------------------------------------------------------------------
def test_loader_batches_rows_in_order_with_a_partial_last_batch():
    X, y = numbered(10)
    loader = DataLoader(TensorDataset(X, y), batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [tuple(xb.shape) for xb, _ in batches] == [(4, 2), (4, 2), (2, 2)]
    for k, (xb, yb) in enumerate(batches):
        assert isinstance(xb, fusion.Tensor) and isinstance(yb, fusion.Tensor)
        np.testing.assert_array_equal(xb.numpy(), X[4 * k:4 * k + 4])
        np.testing.assert_array_equal(yb.numpy(), y[4 * k:4 * k + 4])
        assert xb.dtype == fusion.float32 and yb.dtype == fusion.int64


def test_loader_drop_last():
    X, y = numbered(10)
    loader = DataLoader(TensorDataset(X, y), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [yb.tolist() for _, yb in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    shuffled = DataLoader(TensorDataset(X, y), batch_size=4, shuffle=True, seed=0,
                          drop_last=True)
    assert [len(yb) for _, yb in shuffled] == [4, 4]


def test_shuffle_changes_the_order_but_keeps_the_set_and_the_rows_together():
    X, y = numbered(40)
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True, seed=1)
    epoch1 = [(xb.numpy(), yb.numpy()) for xb, yb in loader]
    seen = np.concatenate([yb for _, yb in epoch1])
    assert sorted(seen.tolist()) == list(range(40))
    assert seen.tolist() != list(range(40))
    for xb, yb in epoch1:  # each row still belongs to its label
        np.testing.assert_array_equal(xb[:, 0], yb.astype(np.float32))
    epoch2 = np.concatenate([yb.numpy() for _, yb in loader])
    assert epoch2.tolist() != seen.tolist()  # a new order each epoch


def test_shuffle_with_a_seed_is_reproducible():
    X, y = numbered(30)

    def orders(seed):
        loader = DataLoader(TensorDataset(X, y), batch_size=7, shuffle=True, seed=seed)
        return [np.concatenate([yb.numpy() for _, yb in loader]).tolist() for _ in range(3)]

    assert orders(5) == orders(5)
    assert orders(5) != orders(6)


def test_tensor_dataset_batches_are_slices_not_per_item_lookups():
    class NoItems(TensorDataset):
        def __getitem__(self, index):
            raise AssertionError("the loader fetched a sample one by one")

    X, y = numbered(9)
    batches = list(DataLoader(NoItems(X, y), batch_size=4, shuffle=True, seed=0))
    assert sorted(np.concatenate([yb.numpy() for _, yb in batches]).tolist()) == list(range(9))


def test_tensor_dataset_items_lengths_and_errors():
    X, y = numbered(3)
    ds = TensorDataset(fusion.Tensor(X), y)
    assert len(ds) == 3
    x1, y1 = ds[1]
    np.testing.assert_array_equal(x1.numpy(), X[1])
    assert y1.item() == 1
    assert [t.shape for t in ds.tensors] == [(3, 2), (3,)]
    with pytest.raises(ValueError, match="one length"):
        TensorDataset(X, np.arange(4))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()


def test_batches_go_to_the_chosen_backend(backend):
    X, y = numbered(6)
    for xb, yb in DataLoader(TensorDataset(X, y), batch_size=4, backend=backend):
        assert xb.backend == yb.backend == backend
    on_backend = TensorDataset(fusion.Tensor(X, backend=backend), y)
    xb, yb = next(iter(DataLoader(on_backend, batch_size=4)))
    assert xb.backend == yb.backend == backend  # the first Tensor's backend
    with fusion.use_backend(backend):
        xb, _ = next(iter(DataLoader(TensorDataset(X, y), batch_size=4)))
    assert xb.backend == backend


def test_any_sequence_of_samples_and_default_collate():
    samples = [(np.array([i, i + 0.5]), i % 2) for i in range(5)]
    xb, yb = next(iter(DataLoader(samples, batch_size=3)))
    np.testing.assert_array_equal(xb.numpy(), [[0, 0.5], [1, 1.5], [2, 2.5]])
    assert yb.tolist() == [0, 1, 0] and yb.dtype == fusion.int64
    batch = default_collate([{"x": [1.0, 2.0], "y": 3}, {"x": [4.0, 5.0], "y": 6}])
    assert batch["x"].tolist() == [[1.0, 2.0], [4.0, 5.0]] and batch["y"].tolist() == [3, 6]
    with pytest.raises(ValueError, match="empty"):
        default_collate([])


def test_a_dataset_subclass_and_a_custom_collate_fn():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.float32(i), np.int64(i * i)

    xb, yb = list(DataLoader(Squares(), batch_size=2))[-1]
    assert xb.tolist() == [4.0] and yb.tolist() == [16]
    loader = DataLoader(Squares(), batch_size=2, collate_fn=lambda s: [int(b) for _, b in s])
    assert list(loader) == [[0, 1], [4, 9], [16]]


def test_loader_argument_conflicts():
    ds = TensorDataset(*numbered(4))
    with pytest.raises(ValueError, match="exclude each other"):
        DataLoader(ds, shuffle=True, sampler=SequentialSampler(4))
    with pytest.raises(ValueError, match="batch_sampler replaces"):
        DataLoader(ds, batch_size=2, batch_sampler=BatchSampler(SequentialSampler(4), 2, False))
    with pytest.raises(ValueError, match="positive int"):
        DataLoader(ds, batch_size=0)
    loader = DataLoader(ds, batch_sampler=[[3, 0], [1]])
    assert [yb.tolist() for _, yb in loader] == [[3, 0], [1]]


# --- train_test_split ---------------------------------------------------------------------------
def test_split_sizes_disjoint_and_rows_kept_together():
    X, y = numbered(10)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=0)
    assert len(X_test) == len(y_test) == 3  # ceil(2.5)
    assert len(X_train) == len(y_train) == 7
    assert sorted(np.concatenate([y_train, y_test]).tolist()) == list(range(10))
    np.testing.assert_array_equal(X_train[:, 0], y_train.astype(np.float32))
    np.testing.assert_array_equal(X_test[:, 0], y_test.astype(np.float32))
    assert len(train_test_split(X, test_size=4, seed=0)[1]) == 4


def test_split_is_reproducible_by_seed_and_by_manual_seed():
    X, y = numbered(50)
    first = train_test_split(y, seed=7)
    assert [a.tolist() for a in first] == [a.tolist() for a in train_test_split(y, seed=7)]
    assert first[1].tolist() != train_test_split(y, seed=8)[1].tolist()
    fusion.manual_seed(2)
    drawn = train_test_split(y)[1].tolist()
    fusion.manual_seed(2)
    assert train_test_split(y)[1].tolist() == drawn


def test_stratified_split_keeps_the_class_proportions():
    y = np.repeat([0, 1, 2], [60, 30, 10])
    X = np.arange(100)
    for seed in range(5):
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=seed,
                                                            stratify=y)
        assert np.bincount(y_test).tolist() == [12, 6, 2]
        assert np.bincount(y_train).tolist() == [48, 24, 8]
        np.testing.assert_array_equal(y[X_test], y_test)
        assert sorted(y_test.tolist()) != y_test.tolist()  # classes are mixed, not sorted


def test_stratified_split_rounds_to_the_requested_total():
    y = np.repeat([0, 1, 2], [7, 7, 7])  # 21 * 0.3 = 6.3 -> 7 test samples
    _, y_test = train_test_split(y, test_size=0.3, seed=0, stratify=y)
    counts = np.bincount(y_test, minlength=3)
    assert counts.sum() == 7 and counts.min() >= 2 and counts.max() <= 3
    with pytest.raises(ValueError, match="single sample"):
        train_test_split(np.arange(5), stratify=[0, 0, 1, 1, 2])


def test_split_keeps_tensors_as_tensors(backend):
    X, y = numbered(10)
    X_train, X_test, y_train, y_test = train_test_split(
        fusion.Tensor(X, backend=backend), y.tolist(), seed=0,
        stratify=fusion.Tensor(y % 2, backend=backend))
    assert isinstance(X_train, fusion.Tensor) and X_train.backend == backend
    assert isinstance(y_train, np.ndarray)
    np.testing.assert_array_equal(X_test.numpy()[:, 0], y_test.astype(np.float32))
    assert np.bincount(y_test % 2).tolist() == [1, 1]


def test_split_without_shuffle_and_bad_arguments():
    X, y = numbered(5)
    assert train_test_split(y, test_size=2, shuffle=False)[1].tolist() == [3, 4]
    with pytest.raises(ValueError, match="one length"):
        train_test_split(X, y[:4])
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        train_test_split(X, test_size=1.5)
    with pytest.raises(ValueError, match="between 1 and 4"):
        train_test_split(X, test_size=5)


# --- StandardScaler -----------------------------------------------------------------------------
def test_scaler_matches_numpy_and_is_fitted_on_the_training_split_only():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(40, 4)) * [1, 10, 0.1, 5]
    X_train, X_test = X[:30], X[30:]
    scaler = StandardScaler().fit(X_train)
    np.testing.assert_allclose(scaler.mean_, X_train.mean(0), rtol=1e-12)
    np.testing.assert_allclose(scaler.scale_, X_train.std(0), rtol=1e-12)
    np.testing.assert_allclose(scaler.var_, X_train.var(0), rtol=1e-12)
    train_scaled = scaler.transform(X_train)
    np.testing.assert_allclose(train_scaled.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(train_scaled.std(0), 1, rtol=1e-12)
    expected = (X_test - X_train.mean(0)) / X_train.std(0)
    np.testing.assert_allclose(scaler.transform(X_test), expected, rtol=1e-12)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(X_test)), X_test,
                               rtol=1e-12)
    np.testing.assert_allclose(StandardScaler().fit_transform(X_train), train_scaled)


def test_scaler_leaves_constant_columns_finite():
    X = np.array([[1.0, 7.0, 0.0], [3.0, 7.0, 0.0], [5.0, 7.0, 0.0]], dtype=np.float32)
    scaler = StandardScaler().fit(X)
    out = scaler.transform(X)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, 1:], 0.0)
    assert scaler.scale_.tolist() == [pytest.approx(np.std([1.0, 3.0, 5.0])), 1.0, 1.0]
    np.testing.assert_allclose(scaler.inverse_transform(out), X)


def test_scaler_on_tensors_returns_tensors(backend):
    X = np.arange(12, dtype=np.float32).reshape(4, 3) ** 1.5
    scaler = StandardScaler().fit(fusion.Tensor(X, backend=backend))
    out = scaler.transform(fusion.Tensor(X, backend=backend))
    assert isinstance(out, fusion.Tensor) and out.backend == backend
    np.testing.assert_allclose(out.numpy(), (X - X.mean(0)) / X.std(0), rtol=1e-5, atol=1e-6)
    ints = StandardScaler().fit_transform(np.array([[1, 2], [3, 4]]))
    assert ints.dtype == np.float32 and ints.tolist() == [[-1.0, -1.0], [1.0, 1.0]]


def test_scaler_errors_and_state_round_trip():
    with pytest.raises(RuntimeError, match="not fitted"):
        StandardScaler().transform(np.zeros((2, 2)))
    scaler = StandardScaler().fit(np.array([[1.0, 2.0], [3.0, 6.0]]))
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        scaler.transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2-D"):
        StandardScaler().fit(np.zeros(3))
    again = StandardScaler().load_state_dict(json.loads(json.dumps(scaler.state_dict())))
    X = np.array([[0.0, 1.0], [5.0, 5.0]])
    np.testing.assert_array_equal(again.transform(X), scaler.transform(X))
    plain = StandardScaler(with_mean=False).fit(np.array([[1.0], [3.0]]))
    assert plain.transform(np.array([[2.0]])).tolist() == [[2.0]]


def test_a_loader_keeps_the_backend_it_was_made_under(backend):
    X, y = numbered(6)
    with fusion.use_backend(backend):
        loader = DataLoader(TensorDataset(X, y), batch_size=4)
    for other in fusion.available_backends():
        with fusion.use_backend(other):
            assert {xb.backend for xb, _ in loader} == {backend}

"""CSV and toy DataModules: shapes, dtypes, splits, seeds, label mappings, normalisation and its state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_moons
from sklearn.model_selection import train_test_split

from datamodules import CSVDataModule, ToyDataModule
from datamodules.csv_table import DataError
from models import ManualModule, MLPSpec
from tests.conftest import ROOT, MessagesOf, quiet_trainer

FLOWER = ROOT / "data/flower/flower_data_train.csv"
LAB04 = ROOT / "data/lab04/train.csv"


def write_csv(path, header, rows) -> str:
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return str(path)


def flower(**overrides) -> CSVDataModule:
    kwargs = dict(
        train_path=str(FLOWER),
        drop_columns=["flower_id"],
        label="outcome",
        positive_class="Thrived",
        val_fraction=0.15,
        test_fraction=0.15,
    )
    kwargs.update(overrides)
    dm = CSVDataModule(**kwargs)
    dm.setup("fit")
    return dm


def test_shipped_flower_csv_has_the_notebook_rows_and_obeys_the_stated_rule() -> None:
    lines = FLOWER.read_text().splitlines()
    assert lines[0] == "flower_id,sun,water,outcome"
    assert lines[1:6] == [
        "0,0.73,0.15,Did not thrive",
        "1,0.6,0.5,Thrived",
        "2,1.0,1.0,Did not thrive",
        "3,0.8,0.55,Thrived",
        "4,0.9,0.6,Thrived",
    ]
    for line in lines[1:]:
        _, sun, water, outcome = line.split(",")
        assert (outcome == "Thrived") == (1.0 <= round(float(sun) + float(water), 2) <= 1.6)


def test_flower_split_mapping_shapes_and_dtypes() -> None:
    dm = flower()
    x, y = dm.tensors("train")
    assert dm.feature_names == ["sun", "water"] and dm.class_names == ["Did not thrive", "Thrived"]
    assert x.dtype == torch.float64 and y.dtype == torch.int64
    sizes = [len(dm.tensors(s)[0]) for s in ("train", "val", "test")]
    assert sizes == [70, 15, 15]
    splits = [dm.tensors(s) for s in ("train", "val", "test")]
    rows = {tuple(r): int(c) for x_s, y_s in splits for r, c in zip(x_s.tolist(), y_s)}
    file_rows = [line.split(",") for line in FLOWER.read_text().splitlines()[1:]]
    assert sorted(rows) == sorted((float(s), float(w)) for _, s, w, _ in file_rows)  # every row, once
    assert dm.num_features == 2 and dm.num_classes == 2
    # the notebook's five rows keep their labels: 'Thrived' -> 1, 'Did not thrive' -> 0
    assert [rows[r] for r in [(0.73, 0.15), (0.6, 0.5), (1.0, 1.0), (0.8, 0.55), (0.9, 0.6)]] == [0, 1, 0, 1, 1]


def test_split_is_seeded_and_rows_keep_file_order() -> None:
    a, b, c = flower(split_seed=3), flower(split_seed=3), flower(split_seed=4)
    assert torch.equal(a.tensors("test")[0], b.tensors("test")[0])
    assert not torch.equal(a.tensors("test")[0], c.tensors("test")[0])
    lines = [a.table("train").lines.tolist(), a.table("test").lines.tolist()]
    assert all(seq == sorted(seq) for seq in lines)
    whole = set(range(2, 102))
    assert set(a.table("train").lines) | set(a.table("val").lines) | set(a.table("test").lines) == whole


def test_text_labels_sorted_ordered_by_classes_or_by_positive_class(tmp_path) -> None:
    path = write_csv(tmp_path / "t.csv", ["a", "kind"], [[1, "cat"], [2, "dog"], [3, "ant"], [4, "dog"]])
    sorted_dm = CSVDataModule(path)
    sorted_dm.setup("fit")
    assert sorted_dm.class_names == ["ant", "cat", "dog"] and sorted_dm.tensors("train")[1].tolist() == [1, 2, 0, 2]
    ordered = CSVDataModule(path, classes=["dog", "cat", "ant"])
    ordered.setup("fit")
    assert ordered.tensors("train")[1].tolist() == [1, 0, 2, 0]
    binary = write_csv(tmp_path / "b.csv", ["a", "kind"], [[1, "no"], [2, "yes"], [3, "no"]])
    positive = CSVDataModule(binary, positive_class="no")
    positive.setup("fit")
    assert positive.class_names == ["yes", "no"] and positive.tensors("train")[1].tolist() == [1, 0, 1]


def test_integer_one_hot_and_indexed_labels(tmp_path) -> None:
    ints = write_csv(tmp_path / "i.csv", ["label", "a", "b"], [[2, 1, 2], [0, 3, 4], [1, 5, 6]])
    dm = CSVDataModule(ints, label=0)
    dm.setup("fit")
    assert dm.feature_names == ["a", "b"] and dm.tensors("train")[1].tolist() == [2, 0, 1] and dm.num_classes == 3
    onehot = write_csv(tmp_path / "o.csv", ["a", "y_0", "y_1", "y_2"], [[1, 0, 0, 1], [2, 1, 0, 0], [3, 0, 1, 0]])
    auto = CSVDataModule(onehot)
    auto.setup("fit")
    assert auto.label_names == ["y_0", "y_1", "y_2"] and auto.tensors("train")[1].tolist() == [2, 0, 1]
    explicit = CSVDataModule(onehot, label=["y_0", "y_1", "y_2"], features=["a"])
    explicit.setup("fit")
    assert explicit.tensors("train")[1].tolist() == [2, 0, 1] and explicit.num_classes == 3


def test_lab04_regression_scale_and_max_normalisation() -> None:
    dm = CSVDataModule(
        str(LAB04),
        predict_path=str(ROOT / "data/lab04/predict.csv"),
        label="score",
        task="regression",
        target_scale=100,
        normalize="max",
    )
    dm.setup("fit")
    x, y = dm.tensors("train")
    assert y.dtype == torch.float64 and y.shape == (3, 1) and y.flatten().tolist() == [0.9, 1.0, 0.88]
    np.testing.assert_allclose(x.numpy(), [[2 / 3, 1, 0], [1 / 3, 5 / 9, 0.5], [1, 2 / 3, 1]])
    np.testing.assert_allclose(dm.tensors("predict")[0].numpy(), [[1.0, 8 / 9, 2.0]])  # the lab's x_predict
    assert dm.num_classes is None and dm.target_scale == 100 and dm.target_names == ["score"]


def test_standardize_is_fitted_on_train_only_and_state_round_trips(tmp_path) -> None:
    train = write_csv(tmp_path / "train.csv", ["a", "b", "y"], [[1, 10, 0], [3, 10, 1], [5, 10, 0], [7, 10, 1]])
    test = write_csv(tmp_path / "test.csv", ["a", "b", "y"], [[100, 10, 0], [4, 11, 1]])
    dm = CSVDataModule(train, test_path=test, normalize="standardize")
    with pytest.warns(UserWarning, match=r"\['b'\] have one value in every training row"):
        dm.setup("fit")
    x = dm.tensors("train")[0]
    assert torch.allclose(x.mean(0), torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(x[:, 0].std(correction=0), torch.tensor(1.0, dtype=torch.float64))
    assert x[:, 1].tolist() == [0.0] * 4  # a constant column is only shifted
    std = np.std([1, 3, 5, 7])
    np.testing.assert_allclose(dm.tensors("test")[0][:, 0].numpy(), [(100 - 4) / std, 0.0])
    # a fresh DataModule with only a predict file gets the same transform from the saved state
    restored = CSVDataModule(predict_path=test, normalize="standardize")
    restored.load_state_dict(dm.state_dict())
    assert torch.equal(restored.tensors("predict")[0], dm.tensors("test")[0])
    assert restored.class_names == ["0", "1"]


def test_missing_cells_can_be_dropped(tmp_path) -> None:
    path = write_csv(tmp_path / "m.csv", ["a", "note", "y"], [[1, "", 0], ["", "x", 1], [2, "NaN", 1], [3, "z", 0]])
    dm = CSVDataModule(path, drop_columns=["note"], missing="drop")
    dm.setup("fit")
    assert dm.tensors("train")[0].flatten().tolist() == [1.0, 2.0, 3.0]  # only the row missing a used cell goes


def test_predict_batches_carry_row_indices() -> None:
    dm = flower(predict_path=str(ROOT / "data/flower/new_flowers.csv"), eval_batch_size=2)
    batches = list(dm.predict_dataloader())
    assert [len(b[0]) for b in batches] == [2, 2, 1]
    assert torch.cat([b[1] for b in batches]).tolist() == [0, 1, 2, 3, 4]
    header, rows = dm.prediction_inputs()
    assert header == ["flower_id", "sun", "water"] and rows[0] == ["100", "0.5", "0.7"]


def test_moons_is_week7_exactly_and_other_toy_sets_have_their_shapes() -> None:
    dm = ToyDataModule("moons", batch_size=210)
    dm.setup("fit")
    x, y = make_moons(n_samples=300, noise=0.2, random_state=42)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=42)
    assert torch.equal(dm.tensors("train")[0], torch.from_numpy(x_train))
    assert torch.equal(dm.tensors("test")[1], torch.from_numpy(y_test))
    assert dm.tensors("train")[0].dtype == torch.float64 and dm.tensors("train")[1].dtype == torch.int64
    assert len(dm.train_dataloader()) == 1 and torch.equal(dm.tensors("val")[0], dm.tensors("test")[0])
    for name, n_train in (("circles", 210), ("xor", 210), ("classification", 210), ("week04_blobs", 400)):
        toy = ToyDataModule(name)
        toy.setup("fit")
        xt, yt = toy.tensors("train")
        assert xt.shape == (n_train, 2) and set(yt.tolist()) == {0, 1}, name
    xor = ToyDataModule("xor", noise=0.0)
    xor.setup("fit")
    xt, yt = xor.tensors("train")
    assert torch.equal(yt, ((xt[:, 0] > 0) != (xt[:, 1] > 0)).long())


def test_mnist_week_blobs_match_the_notebook_draw() -> None:
    np.random.seed(42)  # the notebook's global seeding, then make_toy_data(80)
    cov = np.array([[0.3, 0.0], [0.0, 0.3]])
    x0 = np.random.multivariate_normal(np.array([-1.0, -1.0]), cov, size=80)
    x1 = np.random.multivariate_normal(np.array([1.0, 1.0]), cov, size=80)
    dm = ToyDataModule("blobs", test_size=0.25, val_size=0.2)
    dm.setup("fit")
    everything = torch.cat([dm.tensors(s)[0] for s in ("train", "val", "test")])
    assert sorted(map(tuple, everything.tolist())) == sorted(map(tuple, np.vstack([x0, x1]).tolist()))
    assert [len(dm.tensors(s)[0]) for s in ("train", "val", "test")] == [96, 24, 40]


def test_toy_test_size_zero_is_no_split_tested_on_the_training_rows() -> None:
    """The MNIST-week notebook trains on all 160 rows and tests nothing apart: test_size 0 tests on the training
    rows, has no validation split, and says so."""
    dm = ToyDataModule("blobs", test_size=0, shuffle=False, batch_size=160)
    with MessagesOf("backprop") as printed:
        dm.setup("fit")
    x, y = dm.tensors("train")
    np.random.seed(42)  # the notebook's draw, in its order
    cov = np.array([[0.3, 0.0], [0.0, 0.3]])
    drawn = [np.random.multivariate_normal(np.array([m, m]), cov, size=80) for m in (-1.0, 1.0)]
    assert torch.equal(x, torch.from_numpy(np.vstack(drawn))) and y.tolist() == [0] * 80 + [1] * 80
    assert torch.equal(dm.tensors("test")[0], x) and dm.tensors("val") is None and dm.val_dataloader() == []
    (message,) = printed.text.splitlines()
    assert "train 160 rows, no validation split, test on the training rows (test_size 0: no split)" in message
    held_out = ToyDataModule("blobs", test_size=0, val_size=0.25)
    held_out.setup("fit")
    assert [len(held_out.tensors(s)[0]) for s in ("train", "val", "test")] == [120, 40, 120]
    with pytest.raises(ValueError, match=r"data.test_size and data.val_size are fractions in \[0, 1\), got 1.0"):
        ToyDataModule("blobs", test_size=1.0)


def test_digits_and_toy_normalisation_state() -> None:
    dm = ToyDataModule("digits", test_size=0.2, normalize="standardize")
    with pytest.warns(UserWarning, match="digits: column.* have one value in every training row"):
        dm.setup("fit")
    x, y = dm.tensors("train")
    assert x.shape == (1437, 64) and dm.num_classes == 10 and len(dm.tensors("test")[0]) == 360
    raw = train_test_split(*load_digits(return_X_y=True), test_size=0.2, random_state=42)[0]
    np.testing.assert_allclose(x.mean(0).numpy(), 0, atol=1e-12)
    other = ToyDataModule("digits", test_size=0.2, normalize="standardize")
    other.load_state_dict({"normalizer": {"kind": "standardize", "shift": [0.0] * 64, "scale": [2.0] * 64}})
    np.testing.assert_allclose(other.tensors("train")[0].numpy(), raw / 2)


def test_model_sizes_that_do_not_fit_the_data_stop_with_the_key_to_change(tmp_path) -> None:
    dm = flower()
    wrong_input = ManualModule(MLPSpec(input_size=3, hidden_sizes=[2], output_size=1, head="sigmoid_bce"))
    with pytest.raises(DataError, match=r"net\.input_size is 3 but the data has 2 features"):
        quiet_trainer(tmp_path, max_epochs=1).fit(wrong_input, datamodule=dm)
    wrong_classes = ManualModule(MLPSpec(input_size=2, hidden_sizes=[2], output_size=3, head="softmax_ce"))
    with pytest.raises(DataError, match=r"net\.output_size is 3 but the data has 2 classes"):
        quiet_trainer(tmp_path, max_epochs=1).fit(wrong_classes, datamodule=flower())
    regression_head = ManualModule(MLPSpec(input_size=2, hidden_sizes=[2], output_size=1, head="mse"))
    with pytest.raises(DataError, match=r"\(regression\) but the data has class labels"):
        quiet_trainer(tmp_path, max_epochs=1).fit(regression_head, datamodule=flower())

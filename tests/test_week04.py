"""Week-4 data, same start, notebook equivalence, optimizers and the test report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmarks.baselines import week04_numpy_sgd
from callbacks.weights_export import WeightsExport
from datamodules.csv_table import DataError
from datamodules.week04 import Week04DataModule
from models import ManualModule, MLPSpec, NativeModule
from models.report import format_test_report
from tests.conftest import quiet_trainer
from tests.notebook_reference import notebook_data

WEEK04 = dict(input_size=2, hidden_sizes=[3, 3], output_size=2, activation="sigmoid", bias=False, init_std=0.2)


def test_synthetic_fallback_is_the_notebook_recipe_bit_for_bit(tmp_path) -> None:
    dm = Week04DataModule()
    dm.setup("fit")
    assert "synthetic" in dm.source
    expected = notebook_data(0)
    for got, want in zip((dm.x_train, dm.y_train, dm.x_test, dm.y_test), expected):
        np.testing.assert_array_equal(got.numpy(), want)
    assert dm.x_train.shape == (400, 2) and dm.x_test.shape == (200, 2)
    assert dm.x_train.dtype == torch.float64 and dm.y_train.dtype == torch.int64


def write_csv(path, header, rows) -> None:
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")


def test_csv_files_are_read_with_plain_and_one_hot_labels(tmp_path) -> None:
    write_csv(tmp_path / "train.csv", ["x1", "x2", "label"], [[0.5, 1.0, 0], [1.5, -2.0, 1], [2.0, 0.0, 1]])
    write_csv(tmp_path / "test.csv", ["x1", "x2", "y_0", "y_1"], [[0.1, 0.2, 1, 0], [0.3, 0.4, 0, 1]])
    dm = Week04DataModule(train_path=str(tmp_path / "train.csv"), test_path=str(tmp_path / "test.csv"))
    dm.setup("fit")
    assert "CSV" in dm.source
    assert dm.x_train.tolist() == [[0.5, 1.0], [1.5, -2.0], [2.0, 0.0]]
    assert dm.y_train.tolist() == [0, 1, 1]
    assert dm.x_test.tolist() == [[0.1, 0.2], [0.3, 0.4]]
    assert dm.y_test.tolist() == [0, 1]


def test_bad_csv_cell_names_file_line_and_column(tmp_path) -> None:
    write_csv(tmp_path / "train.csv", ["x1", "x2", "label"], [[0.5, 1.0, 0], [1.5, "abc", 1]])
    write_csv(tmp_path / "test.csv", ["x1", "x2", "label"], [[0.1, 0.2, 1]])
    dm = Week04DataModule(train_path=str(tmp_path / "train.csv"), test_path=str(tmp_path / "test.csv"))
    with pytest.raises(DataError, match=r"train\.csv, line 3, column 'x2': 'abc' is not a number"):
        dm.setup("fit")


def test_loader_order_is_the_notebooks_per_epoch_permutation() -> None:
    dm = Week04DataModule(batch_size=1, seed=3)
    dm.setup("fit")
    loader = dm.train_dataloader()
    rng = np.random.default_rng(3)
    for epoch in range(3):
        loader.set_epoch(epoch)
        rows = torch.cat([x for x, _ in loader])
        np.testing.assert_array_equal(rows.numpy(), dm.x_train.numpy()[rng.permutation(400)])
    no_shuffle = Week04DataModule(shuffle=False)
    no_shuffle.setup("fit")
    np.testing.assert_array_equal(torch.cat([x for x, _ in no_shuffle.train_dataloader()]).numpy(), no_shuffle.x_train)


def test_both_modules_start_from_identical_weights() -> None:
    torch.set_default_dtype(torch.float64)
    try:
        check_identical_start()
    finally:
        torch.set_default_dtype(torch.float32)


def check_identical_start() -> None:
    spec = MLPSpec(**WEEK04, init_seed=5)
    manual, native = ManualModule(spec), NativeModule(MLPSpec(**WEEK04, init_seed=5))
    for (name_a, a), (name_b, b) in zip(manual.state_dict().items(), native.state_dict().items()):
        assert name_a == name_b
        assert torch.equal(a, b)
    other = NativeModule(MLPSpec(**WEEK04, init_seed=6))
    assert not torch.equal(other.net.layers[0].weight, native.net.layers[0].weight)
    # the week-4 draw is the notebook's rng.normal(0, 0.2, size=(fan_in, fan_out)) sequence
    rng = np.random.default_rng(5)
    for layer, shape in zip(native.net.layers, ((2, 3), (3, 3), (3, 2))):
        np.testing.assert_array_equal(layer.weight.detach().double().numpy().T, rng.normal(0, 0.2, size=shape))


def fit(module, tmp_path, epochs: int, **trainer_kwargs):
    dm = Week04DataModule()
    trainer = quiet_trainer(tmp_path, max_epochs=epochs, **trainer_kwargs)
    trainer.fit(module, datamodule=dm)
    return trainer, dm


def test_manual_module_reproduces_the_notebook_loop_exactly(tmp_path) -> None:
    module = ManualModule(MLPSpec(**WEEK04))
    assert module.dtype == torch.float32  # built as the CLI builds it; the Trainer makes it float64 exactly
    fit(module, tmp_path, epochs=2, limit_val_batches=0)
    assert module.net.layers[0].weight.dtype == torch.float64
    xtr, ytr, _, _ = notebook_data(0)
    weights, _ = week04_numpy_sgd(xtr, ytr, epochs=2)
    for layer, w in zip(module.net.layers, weights):
        np.testing.assert_allclose(layer.weight.detach().numpy().T, w, rtol=0, atol=1e-12)


OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1),
    "sgd_momentum_wd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_manual_and_native_modules_train_to_the_same_weights(tmp_path, name: str) -> None:
    spec = dict(WEEK04, bias=True, activation="tanh")
    manual = ManualModule(MLPSpec(**spec), optimizer=OPTIMIZERS[name])
    native = NativeModule(MLPSpec(**spec), optimizer=OPTIMIZERS[name])
    fit(manual, tmp_path / "m", epochs=1, limit_val_batches=0, limit_train_batches=150)
    fit(native, tmp_path / "n", epochs=1, limit_val_batches=0, limit_train_batches=150)
    start = ManualModule(MLPSpec(**spec))
    moved = max((a - b).abs().max().item() for a, b in zip(manual.parameters(), start.parameters()))
    assert moved > 1e-3  # the weights really trained
    for a, b in zip(manual.parameters(), native.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_week04_reaches_f1_095_and_writes_weight_files(tmp_path) -> None:
    module = ManualModule(MLPSpec(**WEEK04))
    trainer, dm = fit(module, tmp_path, epochs=8, callbacks=[WeightsExport(print_final=False)])
    result = trainer.test(module, datamodule=dm, verbose=False)[0]
    assert result["test/f1"] >= 0.95
    initial = json.loads((tmp_path / "weights_initial.json").read_text())
    final = json.loads((tmp_path / "weights_final.json").read_text())
    assert set(final["weights"]) == {"W1", "W2", "W3"} and "fan_in, fan_out" in final["layout"]
    assert np.array(final["weights"]["W1"]).shape == (2, 3)
    assert initial["weights"]["W1"] != final["weights"]["W1"]
    np.testing.assert_allclose(np.array(final["weights"]["W3"]), module.net.layers[2].weight.detach().numpy().T)


def test_report_warns_when_predictions_collapse_to_one_class() -> None:
    collapsed = format_test_report("m", 0.25, 0.5, 0.33, torch.tensor([[100, 0], [100, 0]]))
    assert (
        "every test prediction fell in class 0" in collapsed and "Predicted class counts: {0: 200, 1: 0}" in collapsed
    )
    healthy = format_test_report("m", 0.9, 0.9, 0.9, torch.tensor([[90, 10], [8, 92]]))
    assert "WARNING" not in healthy and "Predicted class counts: {0: 98, 1: 102}" in healthy


def test_a_network_that_does_not_fit_the_week04_data_is_refused_with_the_key_to_change(tmp_path) -> None:
    dm = Week04DataModule(batch_size=400)
    module = ManualModule(MLPSpec(**{**WEEK04, "input_size": 3}))
    with pytest.raises(DataError, match=r"model\.init_args\.net\.input_size is 3 but the data has 2 features"):
        quiet_trainer(tmp_path, max_epochs=1).fit(module, datamodule=dm)


def test_week04_predictions_carry_the_test_rows(tmp_path) -> None:
    dm = Week04DataModule()
    header, rows = dm.prediction_inputs()
    assert header == ["x1", "x2", "label"] and len(rows) == 200
    assert [float(v) for v in rows[0][:2]] == dm.x_test[0].tolist() and int(rows[0][2]) == int(dm.y_test[0])
    x, index = next(iter(dm.predict_dataloader()))
    assert torch.equal(x, dm.x_test) and torch.equal(index, torch.arange(200))  # row indices for the writer

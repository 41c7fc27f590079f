"""Predict end to end: normalisation fitted at fit time travels in the checkpoint and is applied to
new rows; the predictions CSV repeats the inputs in original units and never overwrites a file."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from callbacks.prediction_writer import PredictionWriter
from datamodules import CSVDataModule, ToyDataModule
from models import ManualModule, MLPSpec, NativeModule
from tests.conftest import ROOT, quiet_trainer


def read_rows(path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "train.py"), *args, "--trainer.enable_progress_bar", "false"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


@pytest.mark.slow
def test_lab04_cli_fit_then_predict_new_rows_in_original_units(tmp_path) -> None:
    config = ["--config", str(ROOT / "configs/lab04.yaml"), "--trainer.logger.init_args.save_dir", str(tmp_path)]
    fitted = run_cli("fit", *config, "--trainer.max_epochs", "100", "--test_after_fit", "false")
    assert fitted.returncode == 0, fitted.stderr[-3000:]
    run = tmp_path / "lab04" / "version_0"
    ckpt = next((run / "checkpoints").glob("*.ckpt"))
    new = tmp_path / "new.csv"
    new.write_text("x3,x1,x2\n4,3,8\n1,1,1\n")  # the lab's [3, 8, 4], columns in another order, and one more row
    predicted = run_cli("predict", *config, "--ckpt_path", str(ckpt), "--data.predict_path", str(new))
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    rows = read_rows(run / "predictions.csv")  # next to the checkpoint's run
    assert rows[0] == ["x3", "x1", "x2", "predicted_score"]
    assert [r[:3] for r in rows[1:]] == [["4", "3", "8"], ["1", "1", "1"]]
    # the lab's arithmetic: features / training column max (3, 9, 2), sigmoid net, output * 100
    weights = json.loads((run / "weights_final.json").read_text())["weights"]
    x = np.array([[3, 8, 4], [1, 1, 1]]) / np.array([3, 9, 2])
    expected = 100 * sigmoid(sigmoid(x @ np.array(weights["W1"])) @ np.array(weights["W2"]))[:, 0]
    np.testing.assert_allclose([float(r[3]) for r in rows[1:]], expected, rtol=1e-7)
    assert 50 < expected[0] < 100  # trained towards the lab's scores of 88-100


def test_flower_checkpoint_carries_the_standardisation_and_the_class_mapping(tmp_path) -> None:
    flower = ROOT / "data/flower/flower_data_train.csv"
    train_dm = CSVDataModule(
        str(flower), drop_columns=["flower_id"], positive_class="Thrived", normalize="standardize", batch_size=8
    )
    spec = dict(input_size=2, hidden_sizes=[3], output_size=1, activation="tanh", head="sigmoid_bce")
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt")
    trainer = quiet_trainer(  # the file has no validation rows
        tmp_path, max_epochs=2, enable_checkpointing=True, callbacks=[checkpoint], limit_val_batches=0
    )
    trainer.fit(NativeModule(MLPSpec(**spec)), datamodule=train_dm)
    saved = torch.load(checkpoint.best_model_path, weights_only=True)["CSVDataModule"]
    assert saved["classes"] == {"names": ["Did not thrive", "Thrived"], "numeric": False}
    mean, std = saved["normalizer"]["shift"], saved["normalizer"]["scale"]
    values = np.loadtxt(flower, delimiter=",", skiprows=1, usecols=(1, 2))
    np.testing.assert_allclose(mean, values.mean(0))
    np.testing.assert_allclose(std, values.std(0))

    # a fresh DataModule that has never seen the training file predicts with the saved transform
    predict_dm = CSVDataModule(predict_path=str(ROOT / "data/flower/new_flowers.csv"), normalize="standardize")
    fresh = NativeModule(MLPSpec(**spec))
    writer = PredictionWriter(output_dir=str(tmp_path / "out"))
    # the checkpoint callback too, as Lightning asks of a trainer restoring a checkpoint that one wrote
    quiet_trainer(tmp_path, callbacks=[writer, checkpoint], enable_checkpointing=True).predict(
        fresh, datamodule=predict_dm, ckpt_path=checkpoint.best_model_path
    )
    rows = read_rows(writer.last_path)
    assert rows[0] == ["flower_id", "sun", "water", "predicted_class", "prob_Did not thrive", "prob_Thrived"]
    x = np.array([[float(r[1]), float(r[2])] for r in rows[1:]])
    with torch.no_grad():
        p = torch.sigmoid(fresh(torch.from_numpy((x - mean) / std))).numpy()[:, 0]
    np.testing.assert_allclose([float(r[5]) for r in rows[1:]], p, rtol=1e-7)
    np.testing.assert_allclose([float(r[4]) + float(r[5]) for r in rows[1:]], 1.0)
    assert [r[3] for r in rows[1:]] == ["Thrived" if q >= 0.5 else "Did not thrive" for q in p]


def test_toy_predictions_keep_row_order_with_class_probabilities(tmp_path) -> None:
    dm = ToyDataModule("moons", eval_batch_size=16)
    module = ManualModule(MLPSpec(input_size=2, hidden_sizes=[4], output_size=2, activation="relu"))
    writer = PredictionWriter()
    (tmp_path / "predictions.csv").write_text("keep me\n")
    quiet_trainer(tmp_path, callbacks=[writer]).predict(module, datamodule=dm)
    assert (tmp_path / "predictions.csv").read_text() == "keep me\n"
    assert writer.last_path == tmp_path / "predictions_1.csv"
    rows = read_rows(writer.last_path)
    assert rows[0] == ["x1", "x2", "label", "predicted_class", "prob_0", "prob_1"] and len(rows) == 91
    x_test = dm.tensors("test")[0]
    assert [float(v) for v in rows[1][:2]] == x_test[0].tolist() and [float(v) for v in rows[-1][:2]] == x_test[
        -1
    ].tolist()
    with torch.no_grad():
        probs = torch.softmax(module.double()(x_test), dim=1).numpy()
    np.testing.assert_allclose([[float(v) for v in r[4:]] for r in rows[1:]], probs, rtol=1e-7)

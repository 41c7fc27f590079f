"""Every bad-input case gives one DataError naming the file, row or column and what to do."""

from __future__ import annotations

import pytest

from datamodules import CSVDataModule
from datamodules.csv_table import DataError


def write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def fitted(train: str, **kwargs) -> CSVDataModule:
    dm = CSVDataModule(train, **kwargs)
    dm.setup("fit")
    return dm


GOOD = "a,b,label\n1,2,yes\n3,4,no\n5,6,yes\n"


def test_missing_file(tmp_path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv: file not found\. Check the path"):
        fitted(str(tmp_path / "nope.csv"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"empty\.csv: the file is empty\. It needs a header row and at least one data row"),
        ("\n\n", r"empty\.csv: the file is empty"),
        ("a,b,label\n", r"empty\.csv: only a header \(a, b, label\) and no data rows\. Add data rows"),
    ],
)
def test_empty_file_or_header_only(tmp_path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        fitted(write(tmp_path / "empty.csv", text))


def test_non_numeric_feature(tmp_path) -> None:
    path = write(tmp_path / "t.csv", "a,b,label\n1,2,yes\n3,four,no\n")
    with pytest.raises(DataError, match=r"t\.csv, line 3, column 'b': 'four' is not a number\. .*drop_columns"):
        fitted(path)


@pytest.mark.parametrize("cell", ["", "NaN", "nan", "NA"])
def test_missing_or_nan_cell_is_an_error_by_default(tmp_path, cell: str) -> None:
    path = write(tmp_path / "t.csv", f"a,b,label\n1,2,yes\n\n3,{cell},no\n")  # the blank line still counts
    with pytest.raises(DataError, match=r"t\.csv, line 4, column 'b': missing value\. .*data\.missing: drop"):
        fitted(path)


def test_ragged_row(tmp_path) -> None:
    path = write(tmp_path / "t.csv", "a,b,label\n1,2,yes\n3,no\n")
    with pytest.raises(DataError, match=r"t\.csv, line 3: 2 cells but the header has 3 columns"):
        fitted(path)


@pytest.mark.parametrize(
    ("text", "kwargs"),
    [("a,label\n1,yes\n2,yes\n", {}), ("a,label\n1,3\n2,3\n", {}), ("a,y_0,y_1\n1,1,0\n2,1,0\n", {})],
)
def test_label_column_with_one_class_only(tmp_path, text: str, kwargs: dict) -> None:
    with pytest.raises(DataError, match=r"t\.csv, column.*one class only.*nothing to learn"):
        fitted(write(tmp_path / "t.csv", text), **kwargs)


def test_label_not_in_the_mapping(tmp_path) -> None:
    train = write(tmp_path / "train.csv", GOOD)
    test = write(tmp_path / "test.csv", "a,b,label\n1,2,yes\n3,4,maybe\n")
    dm = fitted(train, test_path=test)
    with pytest.raises(
        DataError, match=r"test\.csv, line 3, column 'label': label 'maybe' is not in the class mapping"
    ):
        dm.test_dataloader()
    explicit = write(tmp_path / "explicit.csv", "a,label\n1,yes\n2,no\n3,maybe\n")
    with pytest.raises(DataError, match=r"line 4, column 'label': label 'maybe'.*'no' -> 0, 'yes' -> 1"):
        fitted(explicit, classes=["no", "yes"]).tensors("train")
    integers = write(tmp_path / "ints.csv", "a,label\n1,0\n2,1\n")
    unseen = write(tmp_path / "unseen.csv", "a,label\n1,0\n2,5\n")
    with pytest.raises(DataError, match=r"unseen\.csv, line 3, column 'label': label '5' is not in the class"):
        fitted(integers, test_path=unseen).tensors("test")


@pytest.mark.parametrize(
    ("split", "text", "message"),
    [
        ("test", "a,label\n1,yes\n", r"missing \['b'\], unexpected \[\]"),
        ("test", "a,b,c,label\n1,2,3,yes\n", r"missing \[\], unexpected \['c'\]"),
        ("test", "a,b\n1,2\n", r"missing \['label'\]"),
        ("predict", "a,c\n1,2\n", r"missing \['b'\], unexpected \['c'\]"),
    ],
)
def test_test_or_predict_columns_differ_from_train(tmp_path, split: str, text: str, message: str) -> None:
    other = write(tmp_path / "other.csv", text)
    dm = fitted(write(tmp_path / "train.csv", GOOD), **{f"{split}_path": other})
    with pytest.raises(DataError, match=rf"other\.csv: its columns differ from the training data's \({message}"):
        dm.tensors(split)


def test_predict_file_may_lack_the_label_and_reorder_columns(tmp_path) -> None:
    other = write(tmp_path / "p.csv", "b,a\n2,1\n")
    dm = fitted(write(tmp_path / "train.csv", GOOD), predict_path=other)
    assert dm.tensors("predict")[0].tolist() == [[1.0, 2.0]]


def test_regression_scale_of_zero() -> None:
    with pytest.raises(DataError, match=r"data\.target_scale is 0: .*non-zero number\. Use 1 for no scaling"):
        CSVDataModule("x.csv", task="regression", target_scale=0)


def test_unknown_columns_and_bad_labels_in_the_config(tmp_path) -> None:
    train = write(tmp_path / "train.csv", GOOD)
    with pytest.raises(DataError, match=r"train\.csv: no column\(s\) \['id'\]; the columns are \['a', 'b', 'label'\]"):
        fitted(train, drop_columns=["id"])
    with pytest.raises(DataError, match=r"train\.csv: no label column \['outcome'\].*Set data\.label"):
        fitted(train, label="outcome")
    with pytest.raises(DataError, match=r"positive_class 'Thrived' needs exactly two labels"):
        fitted(train, positive_class="Thrived")
    fractional = write(tmp_path / "f.csv", "a,label\n1,0.5\n2,1\n")
    with pytest.raises(DataError, match=r"f\.csv, line 2, column 'label': '0\.5' is not a class.*task: regression"):
        fitted(fractional)
    target = write(tmp_path / "r.csv", "a,score\n1,90\n2,high\n")
    with pytest.raises(DataError, match=r"r\.csv, line 3, column 'score': 'high' is not a number\. Target cells"):
        fitted(target, task="regression").tensors("train")


def test_max_normalisation_of_an_all_zero_column(tmp_path) -> None:
    train = write(tmp_path / "train.csv", "a,b,label\n0,2,yes\n0,4,no\n")
    with pytest.raises(DataError, match=r"train\.csv: column\(s\) \['a'\] are all 0 .*normalize: standardize"):
        fitted(train, normalize="max")


def test_predict_without_a_checkpoint_or_training_file(tmp_path) -> None:
    dm = CSVDataModule(predict_path=write(tmp_path / "p.csv", "a,b\n1,2\n"))
    with pytest.raises(DataError, match=r"pass --ckpt_path of a run trained with this data, or set data\.train_path"):
        dm.predict_dataloader()

"""Every bad-input case gives one DataError naming the file, row or column and what to do."""

from __future__ import annotations

import re

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


@pytest.mark.parametrize("huge", ["1e308", "1e200"])
def test_values_that_overflow_standardisation_name_the_column(tmp_path, huge: str) -> None:
    rows = "".join(f"{huge if i % 2 else 1},{i},{'yes' if i % 3 else 'no'}\n" for i in range(8))
    path = write(tmp_path / "big.csv", "a,b,label\n" + rows)
    shown = re.escape(f"{float(huge):.3g}")
    with pytest.raises(DataError, match=rf"big\.csv: column\(s\) \['a'\] hold values up to {shown}, too large"):
        fitted(path, normalize="standardize")


def test_a_test_value_that_overflows_after_normalising_names_its_cell(tmp_path) -> None:
    train = write(tmp_path / "train.csv", "a,b,label\n1,2,yes\n-1,4,no\n")  # a: mean 0, std 1
    test = write(tmp_path / "test.csv", "a,b,label\n1,2,yes\n-1.7e308,4,no\n")
    dm = fitted(train, test_path=test, normalize="max")  # a / 1: fine; b / 4: fine
    assert dm.tensors("test")[0].isfinite().all()
    scaled = fitted(write(tmp_path / "small.csv", "a,b,label\n1e-10,2,yes\n-1e-10,4,no\n"), test_path=test)
    scaled.hparams.normalize = "standardize"
    scaled.fit_state()
    with pytest.raises(DataError, match=r"test\.csv, line 3, column 'a': '-1\.7e308' becomes -inf after normalize"):
        scaled.tensors("test")


def test_a_constant_column_is_left_unscaled_with_a_warning(tmp_path) -> None:
    path = write(tmp_path / "t.csv", "a,b,label\n5,1,yes\n5,2,no\n5,3,yes\n")
    with pytest.warns(UserWarning, match=r"t\.csv: column\(s\) \['a'\] have one value in every training row"):
        dm = fitted(path, normalize="standardize")
    x = dm.tensors("train")[0]
    assert x.isfinite().all() and x[:, 0].eq(0).all()


def test_values_float32_cannot_hold_are_refused_for_a_float32_run(tmp_path) -> None:
    dm = fitted(write(tmp_path / "t.csv", "a,b,label\n1e300,2,yes\n1,4,no\n"))
    assert dm.tensors("train")[0].isfinite().all()  # float64 holds them
    dm.forget_tensors()
    dm.run_precision = "32-true"
    with pytest.raises(DataError, match=r"the train features hold 1e\+300 \(row 1 of the split, 'a'\), which float32"):
        dm.tensors("train")


def test_a_quoted_cell_running_over_lines_is_reported_where_it_starts(tmp_path) -> None:
    path = write(tmp_path / "q.csv", 'a,b,label\n1,2,yes\n3,"4\n5,6,no\n7,8",yes\n9,10,no\n')
    with pytest.raises(DataError, match=r"q\.csv, line 3, column 'b': the cell runs over several lines .*line 3"):
        fitted(path)
    ragged = write(tmp_path / "r.csv", 'a,b,label\n1,2,yes\n3,"4\n5",6,no\n9,10,no\n')
    with pytest.raises(DataError, match=r"r\.csv, line 3: 4 cells but .* \(a quoted cell runs from line 3 to 4\)"):
        fitted(ragged)


@pytest.mark.parametrize(("header", "delimiter"), [("a;b;label", ";"), ("a\tb\tlabel", "\t"), ("a|b|label", "|")])
def test_a_one_column_header_suggests_the_delimiter(tmp_path, header: str, delimiter: str) -> None:
    path = write(tmp_path / "d.csv", header + "\n" + "1" + delimiter + "2" + delimiter + "yes\n")
    with pytest.raises(
        DataError,
        match=rf"d\.csv, line 1: the header is one column .*Set data\.delimiter: {re.escape(repr(delimiter))}",
    ):
        fitted(path)
    semicolons = write(
        tmp_path / "ok.csv", f"a{delimiter}b{delimiter}label\n1{delimiter}2{delimiter}yes\n3{delimiter}4{delimiter}no\n"
    )
    assert fitted(semicolons, delimiter=delimiter).tensors("train")[0].tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_an_unknown_encoding_name_is_a_config_message(tmp_path) -> None:
    with pytest.raises(DataError, match=r"data\.encoding 'utf-9' is not a text encoding Python knows"):
        fitted(write(tmp_path / "t.csv", GOOD), encoding="utf-9")


def test_week04_named_files_must_exist_and_come_in_pairs(tmp_path) -> None:
    from datamodules.week04 import Week04DataModule

    with pytest.raises(DataError, match=r"absent\.csv: file not found"):
        Week04DataModule(train_path=str(tmp_path / "absent.csv"), test_path=str(tmp_path / "absent.csv")).setup()
    with pytest.raises(DataError, match=r"data\.train_path is set but data\.test_path is not"):
        Week04DataModule(train_path=str(tmp_path / "a.csv")).setup()
    fallback = Week04DataModule()
    fallback.setup()
    assert fallback.source.startswith("synthetic fallback, because no data.train_path / data.test_path was given")

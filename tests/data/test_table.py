"""Tables of feature vectors: reading, partial labels, missing and bad cells, the split, filling from training."""

from __future__ import annotations

import numpy as np
import pytest

from edgemtl.data import TableColumns, VectorDataset, open_dataset, read_table, training_sets, write_table
from edgemtl.data.synthetic.tabular import FEATURE_NAMES, TABULAR_TASKS, make_table
from edgemtl.errors import ConfigError, DataError
from edgemtl.tasks import TaskKind, TaskSpec

RISK = TaskSpec("risk", TaskKind.CLASSIFICATION, ("low", "high"))
LEVEL = TaskSpec("level", TaskKind.REGRESSION, ("mm",))
TASKS = (RISK, LEVEL)


def write(tmp_path, text: str):
    path = tmp_path / "table.csv"
    path.write_text(text)
    return path


def test_reads_features_in_the_configured_order_and_targets_with_missing_markers(tmp_path):
    path = write(tmp_path, "b,a,risk,level,note\n1,10,low,0.5,x\n2,20,,,y\n3,30,high,1.5,z\n")
    data = read_table(path, TableColumns(("a", "b")), TASKS)
    assert isinstance(data, VectorDataset) and data.features.dtype == np.float32
    np.testing.assert_array_equal(data.features, [[10, 1], [20, 2], [30, 3]])
    np.testing.assert_array_equal(data.targets["risk"], [0, -1, 1])  # an empty cell: unlabelled
    assert np.isnan(data.targets["level"][1]).all() and data.targets["level"][2, 0] == 1.5
    assert list(data.info["row"]) == [2, 3, 4]


def test_a_missing_feature_column_is_one_line_naming_it(tmp_path):
    path = write(tmp_path, "age,bmi,risk,level\n1,2,low,0\n")
    with pytest.raises(DataError, match=r"no feature column 'heart_rate'.*add the column") as error:
        read_table(path, TableColumns(("age", "heart_rate")), TASKS)
    assert "\n" not in str(error.value)


def test_a_non_numeric_cell_names_file_line_and_column(tmp_path):
    path = write(tmp_path, "age,bmi,risk,level\n1,2,low,0\n3,tall,high,1\n")
    with pytest.raises(DataError, match=r"table.csv line 3, feature column 'bmi' holds 'tall': expected a finite"):
        read_table(path, TableColumns(("age", "bmi")), TASKS)
    path = write(tmp_path, "age,bmi,risk,level\n1,inf,low,0\n")
    with pytest.raises(DataError, match=r"line 2, feature column 'bmi' holds 'inf'"):
        read_table(path, TableColumns(("age", "bmi")), TASKS)


def test_an_empty_feature_is_an_error_unless_the_config_fills_it(tmp_path):
    path = write(tmp_path, "age,bmi,risk,level\n1,2,low,0\n3,,high,1\n")
    with pytest.raises(DataError, match=r"line 3, feature column 'bmi' is empty.*missing_features = \"mean\""):
        read_table(path, TableColumns(("age", "bmi")), TASKS)
    data = read_table(path, TableColumns(("age", "bmi"), missing="mean"), TASKS)
    assert np.isnan(data.features[1, 1])


def test_empty_features_are_filled_with_the_training_splits_mean_never_the_validation_one(tmp_path):
    text = "a,risk,level,split\n1,low,0,train\n3,high,1,train\n,low,0,val\n100,high,1,val\n"
    path = write(tmp_path, text)
    train, val = training_sets(
        path, None, size=None, tasks=TASKS, train_count=0, val_count=0, seed=0, columns=TableColumns(("a",), "mean")
    )
    assert len(train) == 2 and len(val) == 2
    assert val.features[0, 0] == 2.0  # the mean of the training rows 1 and 3, not of the validation ones
    assert train.statistics().mean == (2.0,)


def test_a_table_without_a_split_column_holds_out_a_tenth(tmp_path):
    path = write_table(tmp_path / "t.csv", make_table({"train": 100}, seed=0), TABULAR_TASKS)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")  # drop the split column
    train, val = training_sets(
        path, None, size=None, tasks=TABULAR_TASKS, train_count=0, val_count=0, seed=0,
        columns=TableColumns(FEATURE_NAMES),
    )  # fmt: skip
    assert (len(train), len(val)) == (90, 10)
    assert not set(train.info["row"]) & set(val.info["row"])


def test_written_tables_read_back_exactly(tmp_path):
    data = make_table({"train": 50, "test": 20}, seed=3)
    path = write_table(tmp_path / "t.csv", data, TABULAR_TASKS)
    back = read_table(path, TableColumns(FEATURE_NAMES), TABULAR_TASKS)
    np.testing.assert_array_equal(back.features, data.features)
    for task in TABULAR_TASKS:
        np.testing.assert_array_equal(back.targets[task.name], data.targets[task.name])
    test = open_dataset(path, "test", size=None, tasks=TABULAR_TASKS, columns=TableColumns(FEATURE_NAMES))
    assert len(test) == 20 and set(test.info["split"]) == {"test"}


def test_segmentation_with_vector_input_is_one_clear_error(tmp_path):
    path = write(tmp_path, "a,risk\n1,low\n")
    masks = TaskSpec("ground", TaskKind.SEGMENTATION, ("free", "wall"))
    with pytest.raises(ConfigError, match=r"task 'ground' is segmentation, which needs image input"):
        read_table(path, TableColumns(("a",)), (RISK, masks))


def test_synthetic_records_share_factors_and_drop_labels_per_task():
    data = make_table({"train": 1000, "test": 200}, seed=0, labelled_share=0.4)
    train = data.info["split"] == "train"
    risk_missing = data.targets["risk"][train] == -1
    pressure_missing = np.isnan(data.targets["pressure"][train, 0])
    assert abs(risk_missing.mean() - 0.6) < 0.01 and abs(pressure_missing.mean() - 0.6) < 0.01
    assert (risk_missing != pressure_missing).any()  # each task loses its own rows
    assert (data.targets["risk"][~train] >= 0).all()  # held-out rows keep every label
    # Tasks come from the same factors: the risk class and the pressure move together.
    labelled = ~np.isnan(data.targets["pressure"][:, 0]) & (data.targets["risk"] >= 0)
    assert np.corrcoef(data.targets["risk"][labelled], data.targets["pressure"][labelled, 0])[0, 1] > 0.3


def test_a_parquet_table_reads_as_its_csv_does_nulls_lists_and_errors_included(tmp_path):
    parquet = pytest.importorskip("pyarrow.parquet", reason="Parquet needs pyarrow: pip install 'edgemtl[parquet]'")
    import pyarrow

    tags = TaskSpec("tags", TaskKind.MULTILABEL, ("wet", "dark"))
    columns = {"b": [1.0, 2.0, 3.25], "a": [10, 20, 30], "risk": ["low", None, "high"], "level": [0.5, None, 1.5]}
    columns["tags"] = [["wet"], [], ["wet", "dark"]]
    columns["split"] = ["train", "val", "train"]
    path = tmp_path / "table.parquet"
    parquet.write_table(pyarrow.table(columns), path)
    csv = write(
        tmp_path, "b,a,risk,level,tags,split\n1,10,low,0.5,wet,train\n2,20,,,,val\n3.25,30,high,1.5,wet;dark,train\n"
    )
    from_parquet = read_table(path, TableColumns(("a", "b")), (*TASKS, tags))
    from_csv = read_table(csv, TableColumns(("a", "b")), (*TASKS, tags))
    np.testing.assert_array_equal(from_parquet.features, from_csv.features)
    for name in ("risk", "level", "tags"):
        np.testing.assert_array_equal(from_parquet.targets[name], from_csv.targets[name])
    assert list(from_parquet.info["split"]) == ["train", "val", "train"]
    assert list(from_parquet.info["row"]) == [1, 2, 3]  # Parquet rows count from 1; a CSV's lines from the header

    columns["b"] = ["1", "tall", "3"]
    parquet.write_table(pyarrow.table(columns), path)
    with pytest.raises(DataError, match=r"table.parquet row 2, feature column 'b' holds 'tall'"):
        read_table(path, TableColumns(("a", "b")), TASKS)
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"cannot read table .*table.parquet .*expected a Parquet file"):
        read_table(path, TableColumns(("a", "b")), TASKS)

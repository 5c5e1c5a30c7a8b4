"""describe(): every statistic against pandas (the reference) and hand derivations."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

import fusion
from fusion.data.describe import STATISTICS, Description, describe, read_numeric_csv


def pandas_reference(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The same statistics from pandas, keyed like describe()'s result."""
    summary = frame.describe()
    out = {}
    for column in frame.columns:
        s = frame[column]
        out[str(column)] = {
            "Count": summary[column]["count"], "Mean": summary[column]["mean"],
            "Std": summary[column]["std"], "Min": summary[column]["min"],
            "25%": summary[column]["25%"], "50%": summary[column]["50%"],
            "75%": summary[column]["75%"], "Max": summary[column]["max"],
            "Missing": float(s.isna().sum()), "Variance": s.var(),
            "Range": s.max() - s.min(), "IQR": s.quantile(0.75) - s.quantile(0.25),
            "Skewness": s.skew(), "Kurtosis": s.kurt(),
        }
    return out


def assert_matches(result: Description, reference: dict[str, dict[str, float]]) -> None:
    assert list(result) == list(reference)
    for column, stats in reference.items():
        for stat, expected in stats.items():
            got = result[column][stat]
            if math.isnan(expected):
                assert math.isnan(got), (column, stat, got)
            else:
                assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), (column, stat)


def random_table(seed: int, rows: int = 60, cols: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Different scales, locations and shapes, so that skewness and kurtosis are far from 0.
    data = np.column_stack([
        rng.normal(3.0, 2.0, rows), rng.exponential(5.0, rows), rng.uniform(-1e4, 1e4, rows),
        rng.lognormal(0.0, 1.0, rows), rng.integers(0, 7, rows).astype(float),
    ])[:, :cols]
    data[rng.random(data.shape) < 0.15] = np.nan
    return data


@pytest.mark.parametrize("seed", range(5))
def test_random_data_with_nans_matches_pandas(seed):
    data = random_table(seed)
    names = [f"f{i}" for i in range(data.shape[1])]
    result = describe(data, names=names)
    assert_matches(result, pandas_reference(pd.DataFrame(data, columns=names)))


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5])
def test_few_values_match_pandas(rows):
    # Below 2 values there is no sample variance, below 3 no skewness, below 4 no kurtosis.
    data = random_table(7, rows=rows)
    data[0, 0] = 1.5  # keep at least one value in the first column
    assert_matches(describe(data), pandas_reference(pd.DataFrame(data)))


def test_tensor_input_float32():
    array = random_table(3).astype(np.float32)
    result = describe(fusion.Tensor(array))
    # The statistics are computed in float64 from the float32 values.
    assert_matches(result, pandas_reference(pd.DataFrame(array.astype(np.float64))))


def test_one_dimensional_and_mapping_inputs():
    values = np.array([4.0, 1.0, np.nan, 3.0, 2.0])
    assert list(describe(values)) == ["0"]
    assert describe(values)["0"]["Mean"] == 2.5
    by_name = describe({"a": values, "label": np.array(list("abcde"))})
    assert list(by_name) == ["a"]  # text columns are skipped
    assert by_name["a"]["Missing"] == 1.0


def test_percentiles_by_hand():
    # Linear interpolation at rank (n - 1) q of the sorted values 1, 2, 3, 4:
    # 25% at rank 0.75 -> 1.75, 50% at 1.5 -> 2.5, 75% at 2.25 -> 3.25.
    d = describe(np.array([4.0, np.nan, 1.0, 3.0, 2.0]))["0"]
    assert (d["25%"], d["50%"], d["75%"]) == (1.75, 2.5, 3.25)
    assert d["IQR"] == 1.5
    assert (d["Min"], d["Max"], d["Range"]) == (1.0, 4.0, 3.0)


def test_moments_by_hand():
    # x = 0, 0, 0, 4: mean 1, deviations -1, -1, -1, 3; M2 = 12, M3 = 24, M4 = 84, n = 4.
    d = describe(np.array([0.0, 0.0, 0.0, 4.0]))["0"]
    assert d["Variance"] == pytest.approx(12 / 3)
    assert d["Std"] == pytest.approx(2.0)
    assert d["Skewness"] == pytest.approx(4 * math.sqrt(3) / 2 * 24 / 12**1.5)
    assert d["Kurtosis"] == pytest.approx(4 * 5 * 3 * 84 / (2 * 1 * 144) - 3 * 9 / 2)


def test_constant_and_empty_columns():
    data = np.array([[3.3, np.nan], [3.3, np.nan], [3.3, np.nan], [3.3, np.nan], [3.3, np.nan]])
    d = describe(data)
    assert d["0"]["Variance"] == 0.0 and d["0"]["Std"] == 0.0
    assert math.isnan(d["0"]["Skewness"]) and math.isnan(d["0"]["Kurtosis"])
    assert d["1"]["Count"] == 0.0 and d["1"]["Missing"] == 5.0
    for stat in STATISTICS:
        if stat not in ("Count", "Missing"):
            assert math.isnan(d["1"][stat]), stat
    no_rows = describe(np.empty((0, 2)))
    assert no_rows["1"]["Count"] == 0.0 and math.isnan(no_rows["1"]["Mean"])


def write_42_csv(path, rows: int = 40, seed: int = 0) -> np.ndarray:
    """A file shaped like the 42 school's data.csv: no header, id, M/B diagnosis, features."""
    rng = np.random.default_rng(seed)
    features = rng.gamma(2.0, 3.0, size=(rows, 6))
    ids = rng.integers(10_000, 99_999_999, rows)
    labels = rng.choice(["M", "B"], rows)
    lines = []
    for i in range(rows):
        fields = [str(ids[i]), labels[i]] + [repr(float(v)) for v in features[i]]
        if i % 7 == 3:
            fields[3] = ""  # a missing value
        lines.append(",".join(fields))
    path.write_text("\n".join(lines) + "\n")
    return features


def test_headerless_csv_with_a_text_column(tmp_path):
    path = tmp_path / "data.csv"
    write_42_csv(path)
    result = describe(path)
    frame = pd.read_csv(path, header=None).select_dtypes("number")
    assert list(result) == ["0", "2", "3", "4", "5", "6", "7"]  # column 1 (M/B) is text
    assert_matches(result, pandas_reference(frame))
    assert result["3"]["Missing"] == 6.0


def test_csv_with_header_and_selection(tmp_path):
    path = tmp_path / "houses.csv"
    path.write_text("Index,House,Arithmancy,Astronomy\n0,Gryffindor,58384,-487.8\n"
                    "1,Slytherin,,-552.0\n2,Ravenclaw,67209,NaN\n3,Gryffindor,23702,-366.0\n")
    result = describe(path, columns=["Astronomy", "Arithmancy"])
    assert list(result) == ["Astronomy", "Arithmancy"]
    frame = pd.read_csv(path)[["Astronomy", "Arithmancy"]]
    assert_matches(result, pandas_reference(frame))
    assert list(describe(path, columns=[0, -1])) == ["Index", "Astronomy"]
    with pytest.raises(KeyError, match="House"):
        describe(path, columns=["House"])  # text: not among the numeric columns


def test_read_numeric_csv_header_override_and_ragged_rows(tmp_path):
    path = tmp_path / "numbers.csv"
    path.write_text("1,2\n3,4\n")
    names, array = read_numeric_csv(path, header=True)
    assert names == ["1", "2"] and array.tolist() == [[3.0, 4.0]]
    names, array = read_numeric_csv(path)
    assert names == ["0", "1"] and array.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    path.write_text("1,2\n3\n")
    with pytest.raises(ValueError, match="line 2 has 1 fields, expected 2"):
        read_numeric_csv(path, engine="python")
    # pandas' parser reads a short row's missing fields as missing values
    assert np.isnan(read_numeric_csv(path, engine="pandas")[1][1, 1])
    path.write_text("1,2\n3,4,5\n")
    for engine in ("python", "pandas"):
        with pytest.raises(ValueError, match="numbers.csv.*(line 2|3 fields)"):
            read_numeric_csv(path, engine=engine)


def test_table_is_aligned_like_pandas():
    d = describe(np.array([[1.0, 10.0], [2.0, 20.0], [4.0, np.nan]]), names=["a", "long name"])
    lines = d.to_string().splitlines()
    assert len(lines) == 1 + len(STATISTICS)
    assert len({len(line) for line in lines}) == 1  # every line the same width
    assert lines[0].split() == ["a", "long", "name"]
    assert [line.split()[0] for line in lines[1:]] == list(STATISTICS)
    assert lines[1].split()[1:] == ["3", "2"]  # Count: an integer
    assert lines[9].split()[1:] == ["0", "1"]  # Missing
    assert lines[-1].split()[1:] == ["NaN", "NaN"]  # Kurtosis needs 4 values
    # A column's right edge is where its name ends: values are right-aligned under it.
    edge = lines[0].index("long name") + len("long name")
    assert all(line[edge - 1] != " " for line in lines)


def test_table_wraps_to_width_and_uses_scientific_for_large_values():
    data = np.arange(30, dtype=float).reshape(3, 10) * 1e10
    text = describe(data).to_string(width=60)
    blocks = text.split("\n\n")
    assert len(blocks) > 1
    assert all(len(line) <= 60 for line in text.splitlines())
    assert "2.000000e+11" in text  # mean of column 0: (0 + 10 + 20) / 3 * 1e10


def test_result_as_data():
    d = describe(np.array([[1.0, 2.0], [3.0, 4.0], [2.0, 9.0], [7.0, 5.0]]), names=["x", "y"])
    as_dict = d.to_dict()
    assert list(as_dict) == ["x", "y"] and list(as_dict["x"]) == list(STATISTICS)
    assert as_dict["x"]["Mean"] == 3.25 and as_dict["y"]["Max"] == 9.0
    assert d["x"] == as_dict["x"]
    assert d.row("Min") == {"x": 1.0, "y": 2.0}
    assert describe(np.array([[1.0], [2.0]]))[0]["Mean"] == 1.5  # an int key names column "0"
    with pytest.raises(KeyError, match="the columns are"):
        d["z"]
    with pytest.raises(KeyError, match="the statistics are"):
        d.row("Median")
    assert "<th>Mean</th>" in d._repr_html_()


def test_bad_input():
    with pytest.raises(TypeError, match="needs numbers"):
        describe(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        describe(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="2 names for 3 columns"):
        describe(np.zeros((2, 3)), names=["a", "b"])


def test_headerless_columns_are_picked_by_their_position_in_the_file(tmp_path):
    path = tmp_path / "data.csv"
    write_42_csv(path, rows=10)
    assert list(describe(path, columns=[2, "4"])) == ["2", "4"]
    with pytest.raises(KeyError, match="no numeric column 1"):
        describe(path, columns=[1])  # the M/B column: text


def test_a_column_of_large_values_is_printed_in_scientific_notation():
    d = describe(np.array([[1.0e7, 0.5], [3.0e7, 1.5]]), names=["id", "x"])
    lines = d.to_string().splitlines()
    assert lines[2].split() == ["Mean", "2.000000e+07", "1.000000"]
    assert lines[1].split() == ["Count", "2", "2"]  # counts are integers in any notation
    assert lines[3].split() == ["Std", "1.414214e+07", "0.707107"]  # one notation a column


# --- the command line ------------------------------------------------------------------------
def test_cli_describe_prints_the_table(tmp_path, capsys):
    from fusion.cli import main

    path = tmp_path / "data.csv"
    features = write_42_csv(path, rows=12)
    assert main(["describe", str(path), "--columns", "3", "--width", "80"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["3"]
    column = pd.read_csv(path, header=None)[3]
    assert float(out[2].split()[1]) == pytest.approx(column.mean(), abs=1e-6)
    assert float(out[9].split()[1]) == column.isna().sum()
    assert main(["describe", str(path), "--json", "--columns", "7"]) == 0
    stats = json.loads(capsys.readouterr().out)["7"]
    assert stats["Max"] == pytest.approx(features[:, 5].max())
    assert stats["Skewness"] == pytest.approx(pd.Series(features[:, 5]).skew())


def test_cli_describe_errors_name_the_problem(tmp_path, capsys):
    from fusion.cli import main

    assert main(["describe", str(tmp_path / "missing.csv")]) == 1
    assert "No such file" in capsys.readouterr().err
    path = tmp_path / "data.csv"
    write_42_csv(path, rows=5)
    assert main(["describe", str(path), "--columns", "1"]) == 1
    assert "no numeric column 1" in capsys.readouterr().err


def test_console_command_runs_as_a_module(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "h.csv"
    path.write_text("a,b\n1,x\n3,y\n")
    out = subprocess.run([sys.executable, "-m", "fusion.cli", "describe", str(path)],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    assert out.splitlines()[0].split() == ["a"]
    assert out.splitlines()[2].split() == ["Mean", "2.000000"]


def test_cli_describe_on_the_42_data_csv(tmp_path):
    import subprocess
    import sys

    pytest.importorskip("sklearn")
    subprocess.run([sys.executable, "-m", "fusion.examples.mlp", "dataset", "data.csv"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=300)
    path = tmp_path / "data.csv"
    result = describe(path)
    frame = pd.read_csv(path, header=None).select_dtypes("number")
    assert len(result) == 31 and "1" not in result  # id and 30 features; M/B skipped
    assert_matches(result, pandas_reference(frame))


# --- reading files: both readers, layouts, bad files ---------------------------------------
def write_mixed_csv(path, rows: int, seed: int = 0, delimiter: str = ",") -> None:
    """A header, an id, a text column, numbers with missing markers of several spellings."""
    rng = np.random.default_rng(seed)
    markers = ["", "NA", "nan", "?", "null", " NaN "]
    lines = [delimiter.join(["id", "kind", "x", "y", "z"])]
    for i in range(rows):
        x, y, z = rng.normal(3.0, 2.0), rng.exponential(4.0), rng.integers(-5, 5)
        fields = [str(i), rng.choice(["cat", "dog"]), repr(x), repr(y), str(z)]
        if i % 11 == 5:
            fields[2 + i % 3] = markers[i % len(markers)]
        lines.append(delimiter.join(fields))
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("engine", ["python", "pandas"])
def test_both_readers_match_pandas_across_chunks(tmp_path, engine, monkeypatch):
    import fusion.data.csvfile as csvfile

    monkeypatch.setattr(csvfile, "CHUNK_ROWS", 64)  # many chunks of rows
    path = tmp_path / "mixed.csv"
    write_mixed_csv(path, rows=500)
    names, values = read_numeric_csv(path, engine=engine)
    frame = pd.read_csv(path, na_values=["?", "null", " NaN "]).select_dtypes("number")
    assert names == ["id", "x", "y", "z"] == list(frame.columns)
    np.testing.assert_array_equal(values, frame.to_numpy(dtype=np.float64))


def test_statistics_joined_over_chunks_match_pandas():
    from fusion.data.describe import _statistics

    data = random_table(11, rows=1000)
    data[:, 1] += 1e6  # a large mean: the joined central moments must stay exact
    names = [f"f{i}" for i in range(data.shape[1])]
    reference = pandas_reference(pd.DataFrame(data, columns=names))
    for chunk in (7, 100, 999, 5000):
        result = Description(names, _statistics(data, chunk_rows=chunk))
        assert_matches(result, reference)


def test_semicolon_separated_file_with_decimal_commas(tmp_path):
    path = tmp_path / "european.csv"
    path.write_text("name;height;weight\nanna;1,62;55,5\nbert;1,80;80\ncarl;1,75;\n")
    result = describe(path)
    assert list(result) == ["height", "weight"]
    assert result["height"]["Mean"] == pytest.approx((1.62 + 1.80 + 1.75) / 3)
    assert result["weight"]["Missing"] == 1
    path.write_text("a;b\n1.5;2\n2.5;4\n")
    assert describe(path)["b"]["Max"] == 4.0


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty"),
    ("\n\n  \n", "the file is empty"),
    ("a,b,c\n", "no rows of data (only a header)"),
    ("name,kind\nanna,cat\nbert,dog\n", "no numeric column"),
])
def test_files_without_numbers_are_one_line_errors(tmp_path, capsys, text, message):
    from fusion.cli import main

    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        describe(path)
    assert main(["describe", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fusion describe: ") and message in lines[0]


def test_counts_are_integers_in_json(tmp_path, capsys):
    from fusion.cli import main

    path = tmp_path / "h.csv"
    path.write_text("a,b\n1,2\n3,\n")
    assert main(["describe", str(path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["b"]["Count"] == 1 and isinstance(stats["b"]["Count"], int)
    assert stats["b"]["Missing"] == 1 and isinstance(stats["b"]["Missing"], int)


@pytest.mark.parametrize("engine", ["python", "pandas"])
def test_progress_reaches_the_file_size(tmp_path, engine, monkeypatch):
    import fusion.data.csvfile as csvfile

    monkeypatch.setattr(csvfile, "CHUNK_ROWS", 50)
    path = tmp_path / "mixed.csv"
    write_mixed_csv(path, rows=400)
    calls = []
    read_numeric_csv(path, engine=engine, progress=lambda done, total: calls.append((done, total)))
    size = path.stat().st_size
    assert len(calls) >= 2 and all(total == size for _, total in calls)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert calls[-1][0] == size

"""/invocations: the four JSON layouts, CSV and Parquet give pyfunc's predictions; each client mistake a
clear 4xx."""

import io
import sys

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from service import scoring_protocol
from testing.model_fixtures import LoggedModel


@pytest.fixture(scope="module")
def expected(example_model: LoggedModel) -> list[float]:
    """What MLflow's own pyfunc predicts for the first three sample rows."""
    model = mlflow.pyfunc.load_model(example_model.local_path)
    return list(np.asarray(model.predict(example_model.sample.head(3))))


def payloads(example_model: LoggedModel) -> dict[str, dict[str, object]]:
    """The same three rows in each of MLflow's four JSON layouts."""
    frame = example_model.sample.head(3)
    records = frame.to_dict(orient="records")
    return {
        "dataframe_split": {"dataframe_split": frame.to_dict(orient="split", index=False)},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": frame.to_dict(orient="list")},
    }


@pytest.mark.parametrize("layout", ["dataframe_split", "dataframe_records", "instances", "inputs"])
def test_each_json_layout_matches_pyfunc(
    client: TestClient, example_model: LoggedModel, expected: list[float], layout: str
) -> None:
    response = client.post("/invocations", json=payloads(example_model)[layout])
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}


def test_split_columns_in_any_order_give_the_same_predictions(
    client: TestClient, example_model: LoggedModel, expected: list[float]
) -> None:
    frame = example_model.sample.head(3)
    shuffled = frame[list(reversed(frame.columns))]
    response = client.post(
        "/invocations", json={"dataframe_split": shuffled.to_dict(orient="split", index=False)}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}


def test_the_first_value_that_is_not_a_number_is_named_even_late_in_a_large_batch(
    client: TestClient, example_model: LoggedModel
) -> None:
    frame = example_model.sample.head(1)
    data = [list(row) for row in frame.to_numpy().tolist() * 40]
    data[37][2] = True  # a bool: JSON's true, which numpy would take as 1.0
    body = {"dataframe_split": {"columns": list(frame.columns), "data": data}}
    response = client.post("/invocations", json=body)
    assert response.status_code == 400
    assert (
        f"Column '{frame.columns[2]}' in row 37 must be a number or null, got True."
        in response.json()["message"]
    )


def test_csv_matches_pyfunc(client: TestClient, example_model: LoggedModel, expected: list[float]) -> None:
    body = example_model.sample.head(3).to_csv(index=False)
    response = client.post("/invocations", content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}


def test_integers_are_accepted_for_double_columns(client: TestClient, rows: list[dict[str, float]]) -> None:
    as_ints = {name: round(value) for name, value in rows[0].items()}
    response = client.post("/invocations", json={"dataframe_records": [as_ints]})
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 1


def post_json(client: TestClient, body: object) -> tuple[int, str]:
    response = client.post("/invocations", json=body)
    assert response.headers["content-type"] == "application/json"
    return response.status_code, response.json()["message"]


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/invocations", content=b'{"dataframe_split": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "Malformed JSON" in response.json()["message"]


def test_missing_and_extra_columns_are_named(client: TestClient, rows: list[dict[str, float]]) -> None:
    record = dict(rows[0])
    del record["rpm"]
    record["colour"] = 1.0
    status, message = post_json(client, {"dataframe_records": [record]})
    assert status == 400
    assert "missing columns ['rpm']" in message
    assert "unexpected columns ['colour']" in message


def test_wrong_type_names_column_and_row(client: TestClient, rows: list[dict[str, float]]) -> None:
    bad = [rows[0], {**rows[1], "rpm": "fast"}]
    status, message = post_json(client, {"dataframe_records": bad})
    assert status == 400
    assert "'rpm' in row 1 must be a number" in message


def test_bool_is_not_a_number(client: TestClient, rows: list[dict[str, float]]) -> None:
    status, _ = post_json(client, {"dataframe_records": [{**rows[0], "rpm": True}]})
    assert status == 400


def test_empty_input_is_400(client: TestClient) -> None:
    status, message = post_json(client, {"dataframe_records": []})
    assert status == 400
    assert "no rows" in message


def test_too_many_rows_is_413(client: TestClient, rows: list[dict[str, float]]) -> None:
    status, message = post_json(client, {"dataframe_records": rows[:1] * 51})
    assert status == 413
    assert "limit of 50" in message


@pytest.mark.parametrize("body", [[1, 2], {"nothing": 1}, {"dataframe_records": [], "instances": []}])
def test_wrong_envelope_is_400(client: TestClient, body: object) -> None:
    status, message = post_json(client, body)
    assert status == 400
    assert "dataframe_split" in message


def test_wrong_content_type_is_415(client: TestClient) -> None:
    response = client.post(
        "/invocations", content=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415
    assert "application/json or text/csv" in response.json()["message"]


def test_non_utf8_charset_is_415(client: TestClient) -> None:
    response = client.post(
        "/invocations", content=b"{}", headers={"Content-Type": "application/json; charset=latin-1"}
    )
    assert response.status_code == 415


def test_bad_csv_is_400(client: TestClient, example_model: LoggedModel) -> None:
    """A value MLflow's CSV parser cannot read: BAD_REQUEST, its error_code for what does not parse."""
    body = example_model.sample.head(1).assign(rpm="fast").to_csv(index=False).encode()
    response = client.post("/invocations", content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 400
    assert response.json()["error_code"] == "BAD_REQUEST"


def test_missing_csv_columns_are_invalid_parameter_value(client: TestClient) -> None:
    """What MLflow's schema enforcement refuses gets its error_code: INVALID_PARAMETER_VALUE."""
    response = client.post("/invocations", content=b"rpm\n1000\n", headers={"Content-Type": "text/csv"})
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_null_values_take_mlflows_path_and_answer_as_pyfunc(
    client: TestClient, example_model: LoggedModel, rows: list[dict[str, float]]
) -> None:
    record = {**rows[0], "rpm": None}
    response = client.post("/invocations", json={"dataframe_records": [record]})
    frame = pd.DataFrame([{**rows[0], "rpm": np.nan}])
    reference = mlflow.pyfunc.load_model(example_model.local_path).predict(frame)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": list(np.asarray(reference))}


def test_values_beyond_float32_are_400_as_in_mlflow(client: TestClient, rows: list[dict[str, float]]) -> None:
    status, message = post_json(client, {"dataframe_records": [{**rows[0], "rpm": 1e300}]})
    assert status == 400
    assert "too large" in message


def test_nan_is_not_json(client: TestClient) -> None:
    body = b'{"dataframe_records": [{"rpm": NaN}]}'
    response = client.post("/invocations", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "NaN and Infinity are not JSON" in response.json()["message"]


@pytest.mark.parametrize("column", [["rpm"], {"name": "rpm"}, 3])
def test_column_names_that_are_not_strings_are_400(
    client: TestClient, rows: list[dict[str, float]], column: object
) -> None:
    columns = [*list(rows[0])[:-1], column]
    split = {"columns": columns, "data": [list(rows[0].values())]}
    status, message = post_json(client, {"dataframe_split": split})
    assert status == 400
    assert "not strings" in message


def test_a_wide_csv_header_is_refused_unparsed_and_its_names_not_echoed(client: TestClient) -> None:
    header = ",".join(f"column_{number}" for number in range(5000))
    response = client.post("/invocations", content=f"{header}\n", headers={"Content-Type": "text/csv"})
    assert response.status_code == 400
    assert "5000 columns" in response.json()["message"]
    assert len(response.content) < 500


def test_unexpected_columns_are_echoed_cut_short(client: TestClient, rows: list[dict[str, float]]) -> None:
    record = {**rows[0], **{f"{'x' * 100}{number}": 1.0 for number in range(500)}}
    status, message = post_json(client, {"dataframe_records": [record]})
    assert status == 400
    assert "... and 490 more" in message
    assert len(message) < 1000


PARQUET = {"Content-Type": "application/vnd.apache.parquet"}


def parquet(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out, index=False)
    return out.getvalue()


def test_parquet_matches_pyfunc(
    client: TestClient, example_model: LoggedModel, expected: list[float]
) -> None:
    response = client.post("/invocations", content=parquet(example_model.sample.head(3)), headers=PARQUET)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}


def test_parquet_rows_are_counted_from_its_footer(client: TestClient, example_model: LoggedModel) -> None:
    frame = pd.concat([example_model.sample] * 2).head(51)
    assert client.post("/invocations", content=parquet(frame), headers=PARQUET).status_code == 413


def test_parquet_that_decodes_too_large_is_refused_undecoded(
    client: TestClient, example_model: LoggedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scoring_protocol, "MAX_PARQUET_DECODED_BYTES", 100)
    monkeypatch.setattr(scoring_protocol, "parse_parquet_input", lambda _: pytest.fail("decoded"))
    response = client.post("/invocations", content=parquet(example_model.sample.head(3)), headers=PARQUET)
    assert response.status_code == 400
    assert "more than 100" in response.json()["message"]


def test_a_body_that_is_not_parquet_is_bad_request(client: TestClient) -> None:
    response = client.post("/invocations", content=b"PAR1 nothing", headers=PARQUET)
    assert (response.status_code, response.json()["error_code"]) == (400, "BAD_REQUEST")
    assert "not a Parquet file" in response.json()["message"]


def test_parquet_without_pyarrow_is_415_not_a_bad_file(
    client: TestClient, example_model: LoggedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image may lack pyarrow (mlflow-skinny does not need it): the server cannot read Parquet, which
    is not the client's file's fault (MLflow's server answers 400 "Failed to parse input" there)."""
    body = parquet(example_model.sample.head(3))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    response = client.post("/invocations", content=body, headers=PARQUET)
    assert response.status_code == 415
    assert "no pyarrow" in response.json()["message"]


def test_older_parquet_media_type_is_415_as_in_mlflow(client: TestClient, example_model: LoggedModel) -> None:
    body = parquet(example_model.sample.head(3))
    headers = {"Content-Type": "application/x-parquet"}
    assert client.post("/invocations", content=body, headers=headers).status_code == 415


def test_parquet_whose_shared_value_expands_past_the_limit_is_refused_unexpanded(
    client: TestClient, example_model: LoggedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1 MB string stored once in a column's dictionary, shared by 50 rows: 47 KB of body, whose footer
    declares 1 MB, but 50 MB once pandas copies the string per row (gigabytes with a longer string or more
    rows). Counted from the dictionary and refused before MLflow's parser expands it (the limit lowered
    to 10 MB here, as the client's MAX_BODY_BYTES and MAX_ROWS are lowered)."""
    import pyarrow
    import pyarrow.parquet

    monkeypatch.setattr(scoring_protocol, "MAX_PARQUET_DECODED_BYTES", 10_000_000)
    monkeypatch.setattr(scoring_protocol, "parse_parquet_input", lambda _: pytest.fail("expanded"))
    columns = {name: pyarrow.array([1.0] * 50) for name in example_model.sample.columns}
    shared = pyarrow.array(["x" * 1_000_000])
    columns["rpm"] = pyarrow.DictionaryArray.from_arrays(pyarrow.array([0] * 50, pyarrow.int32()), shared)
    out = io.BytesIO()
    pyarrow.parquet.write_table(pyarrow.table(columns), out)
    response = client.post("/invocations", content=out.getvalue(), headers=PARQUET)
    assert response.status_code == 400
    assert "decodes to 5000" in response.json()["message"]


def test_parquet_in_a_codec_that_expands_without_bound_is_415(
    client: TestClient, example_model: LoggedModel
) -> None:
    out = io.BytesIO()
    example_model.sample.head(3).to_parquet(out, index=False, compression="zstd")
    response = client.post("/invocations", content=out.getvalue(), headers=PARQUET)
    assert response.status_code == 415
    assert "['ZSTD']" in response.json()["message"]

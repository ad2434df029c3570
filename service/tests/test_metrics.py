"""/metrics counts requests by route and status, predicted rows, and reports the model load time."""

import re

from fastapi.testclient import TestClient


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if all(found.get(key) == value for key, value in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_requests_predictions_and_load_time(client: TestClient, rows: list[dict[str, float]]) -> None:
    before = client.get("/metrics").text
    client.post("/invocations", json={"dataframe_records": rows})
    client.post("/invocations", json={"dataframe_records": []})
    client.get("/no-such-route")
    after = client.get("/metrics").text
    ok = {"route": "/invocations", "method": "POST", "status": "200"}
    bad = {"route": "/invocations", "method": "POST", "status": "400"}
    assert sample(after, "http_requests_total", **ok) == sample(before, "http_requests_total", **ok) + 1
    assert sample(after, "http_requests_total", **bad) == sample(before, "http_requests_total", **bad) + 1
    assert sample(after, "http_request_duration_seconds_count", **ok) >= 1
    assert sample(after, "http_requests_total", route="<unmatched>", status="404") >= 1
    predicted = sample(after, "model_predictions_total", route="/invocations")
    assert predicted == sample(before, "model_predictions_total", route="/invocations") + len(rows)
    assert sample(after, "model_load_seconds") > 0

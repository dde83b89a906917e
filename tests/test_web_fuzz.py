"""The web API fuzzed from its own OpenAPI schema (schemathesis), against a real server on 127.0.0.1.

Every operation gets requests that follow the schema and requests that break it
(wrong types, missing fields, random bytes as the photo). Whatever comes, the
answer is never a 5xx, and every error is JSON with a ``detail``.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from fixtures.server import live_server
from mnistlab.experiments.pipeline import DataChoice, train
from mnistlab.web.app import create_app

EXAMPLES = 40  # per operation and generation mode: a few seconds each


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz-out")
    data = DataChoice(train_size=600, test_size=200)
    for name in ("alpha", "beta"):  # two runs, so that /api/compare can succeed too
        train("logreg", {}, data, out, name=name)
    with live_server(create_app(out, workers=1)) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")


# schemathesis's own pytest plugin (schema.parametrize with a lazy fixture) does not run
# under pytest 9, so each operation's strategy is driven by Hypothesis directly.
@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_no_request_gets_a_5xx_and_every_error_is_json(api_schema, mode):
    sent = Counter()
    strategies = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        strategies.append((operation, operation.as_strategy(generation_mode=mode)))
        if "{name}" in operation.path:  # random names are all unknown: fuzz the rest of a real run's request too
            strategy = operation.as_strategy(generation_mode=mode, path_parameters={"name": "alpha"})
            strategies.append((operation, strategy))
    for operation, strategy in strategies:

        @given(case=strategy)
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            response = case.call(timeout=30)
            sent[operation.label, response.status_code] += 1
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
            if response.status_code >= 400:
                body = response.json()
                assert isinstance(body, dict) and body.get("detail"), response.text

        try:
            check()
        except Unsatisfiable:
            # no request can break the schema of an operation whose only input is any string, or none
            assert mode is schemathesis.GenerationMode.NEGATIVE and operation.method == "get"
    operations = {label for label, _ in sent}
    expected = {"POST /api/predict", "POST /api/compare"}
    if mode is schemathesis.GenerationMode.POSITIVE:
        expected |= {"GET /api/runs", "GET /api/runs/{name}"}
    assert expected <= operations
    print(mode, dict(sent))

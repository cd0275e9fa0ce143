"""`stellartune serve`: a real server process on a free loopback port, serving real MiniLM models
trained on slices of the shared data. Its answers equal `stellartune predict`'s on the same texts."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import data_file, example_inputs

import stellartune

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 300):
    """(status, headers, parsed JSON or text) of one HTTP request; `body` a dict (sent as JSON) or bytes."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    connection.request(method, path, body=data, headers={"content-type": "application/json", **(headers or {})})
    response = connection.getresponse()
    raw = response.read().decode()
    connection.close()
    kind = response.getheader("content-type", "")
    return response.status, dict(response.getheaders()), json.loads(raw) if "json" in kind else raw


@contextlib.contextmanager
def server(run: Path, log: Path, *flags: str):
    port = free_port()
    with open(log, "w") as handle:
        process = subprocess.Popen([sys.executable, "-m", "stellartune.cli", "serve", str(run), "--port", str(port),
                                    *flags], stdout=handle, stderr=subprocess.STDOUT)
    try:
        for _ in range(2400):  # polls every 0.05 s: a guard against hanging, not a speed check
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(OSError):
                if request(port, "GET", "/ready", timeout=2)[0] == 200:
                    break
            time.sleep(0.05)
        else:
            pytest.fail(f"the server never became ready:\n{log.read_text()}")
        yield port, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def cli_predictions(run: Path, texts: list[str], pairs: list[str] | None, folder: Path) -> list[dict]:
    """What `stellartune predict` writes for these inputs, from the kind of file a user would give it."""
    model = stellartune.load(run)
    if pairs is None:
        source = folder / "inputs.txt"
        source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    else:
        source = folder / "inputs.jsonl"
        source.write_text("".join(json.dumps({model.columns.text: t, model.columns.pair or "context": p}) + "\n"
                                  for t, p in zip(texts, pairs)), encoding="utf-8")
    out = folder / "predictions.jsonl"
    subprocess.run([sys.executable, "-m", "stellartune.cli", "predict", "--model", str(run), "--input", str(source),
                    "--output", str(out)], check=True, capture_output=True)
    return [json.loads(line) for line in out.read_text().splitlines()]


def assert_same(served, predicted, path="") -> None:
    """Equal, floats to 1e-5 (the server batches differently; fp32 rounding differs in the last digits)."""
    if isinstance(predicted, float):
        assert served == pytest.approx(predicted, abs=1e-5), path
    elif isinstance(predicted, dict):
        assert served.keys() == predicted.keys(), path
        for key in predicted:
            assert_same(served[key], predicted[key], f"{path}.{key}")
    elif isinstance(predicted, list):
        assert len(served) == len(predicted), path
        for i, (a, b) in enumerate(zip(served, predicted)):
            assert_same(a, b, f"{path}[{i}]")
    else:
        assert served == predicted, path


def distinct_answers(predictions: list[dict]) -> int:
    """How many different answers a model gave: a comparison of constant answers proves nothing."""
    answer = lambda p: next((p[k] for k in ("label", "labels", "entities", "answer") if k in p), p.get("score"))
    return len({json.dumps(answer(p)) for p in predictions})


@pytest.mark.parametrize("kind", ["classification", "pairs", "multi-label", "ner", "qa", "regression", "few-shot", "long-texts"])
def test_served_predictions_equal_stellartune_predict(short_runs, tmp_path, kind):
    body, texts, pairs = example_inputs(kind)
    with server(short_runs[kind], tmp_path / "server.log") as (port, _):
        status, headers, answer = request(port, "POST", "/predict", body)
        schema = request(port, "GET", "/openapi.json")[2]["components"]["schemas"]
    assert status == 200, answer
    predicted = cli_predictions(short_runs[kind], texts, pairs, tmp_path)
    assert distinct_answers(predicted) > 1, predicted  # the model tells its inputs apart
    assert_same(answer["predictions"], predicted)
    assert set(schema["PredictRequest"]["properties"]) == set(body)  # /docs describes this model's inputs ...
    assert set(schema["Prediction"]["properties"]) == set(answer["predictions"][0])  # ... and outputs
    assert headers["x-request-id"] in (tmp_path / "server.log").read_text()  # one log line per request, with its id


BAD_REQUESTS = [  # body, status, what the one-line error must say
    (b'{"texts": ["a good film"', 422, "the body is not valid JSON"),
    ({"texts": "a good film"}, 422, "texts: Input should be a valid list"),
    ({"texts": ["fine", 3]}, 422, "texts[1]: Input should be a valid string"),
    ({"texts": []}, 422, "texts: List should have at least 1 item"),
    ({"sentences": ["fine"]}, 422, "texts: missing"),
    ({"texts": ["fine", "   "]}, 422, "texts[1]: empty text"),
    ({"texts": ["fine"] * 257}, 413, "texts: 257 items; the limit is 256 per request (--max-texts)"),
    ({"texts": ["fine", "x" * 20_001]}, 413, "texts[1]: 20,001 characters; the limit is 20,000 (--max-chars)"),
    ({"texts": ["x" * 10_000] * 101}, 413, "request body over 1,000,000 bytes (--max-body-bytes)"),
]


def test_bad_requests_get_a_4xx_naming_the_field_or_limit_and_the_server_keeps_serving(short_runs, tmp_path):
    good = {"texts": ["A truly brilliant film."]}
    with server(short_runs["classification"], tmp_path / "server.log") as (port, _):
        expected = request(port, "POST", "/predict", good)[2]
        for body, status, message in BAD_REQUESTS:
            got_status, headers, answer = request(port, "POST", "/predict", body, {"x-request-id": "bad-1"})
            assert (got_status, answer["error"]) == (status, answer["error"]), answer
            assert message in answer["error"] and "\n" not in answer["error"], answer
            assert answer["request_id"] == headers["x-request-id"] == "bad-1"
            assert request(port, "POST", "/predict", good)[2] == expected  # the next valid request succeeds
        metrics = request(port, "GET", "/metrics")[2]
    assert 'stellartune_request_errors_total{route="/predict",status="413"} 3.0' in metrics
    assert 'stellartune_request_errors_total{route="/predict",status="422"} 6.0' in metrics
    assert f'stellartune_requests_total{{route="/predict",status="200"}} {len(BAD_REQUESTS) + 1}.0' in metrics


def test_each_window_of_a_long_text_counts_against_max_windows(short_runs, tmp_path):
    """--max-windows bounds the work a request costs: long documents over it get 413, fewer pass."""
    body, texts, _ = example_inputs("long-texts")
    windows = [p["windows"] for p in stellartune.load(short_runs["long-texts"]).predict(texts)]
    assert max(windows) > 1, windows  # long documents: several windows each
    limit = sum(windows) - 1
    with server(short_runs["long-texts"], tmp_path / "server.log", "--max-windows", str(limit)) as (port, _):
        over = request(port, "POST", "/predict", body)
        within = request(port, "POST", "/predict", {"texts": texts[1:]})
    assert over[0] == 413, over
    assert over[2]["error"] == (f"texts: {sum(windows)} windows of 128 tokens; the limit is {limit} per request "
                                "(--max-windows)")
    assert within[0] == 200 and [p["windows"] for p in within[2]["predictions"]] == windows[1:], within


def test_concurrent_requests_each_get_exactly_their_own_answers(short_runs, tmp_path):
    sentences = [line.split("\t")[0] for line in data_file("sst2/dev.tsv").read_text().splitlines()[1:]]
    bodies, start = [], 0
    for i in range(64):  # 64 requests of 1 to 8 distinct sentences
        size = 1 + (i * 5) % 8
        bodies.append({"texts": sentences[start : start + size]})
        start += size
    texts = sentences[:start]
    expected = dict(zip(texts, stellartune.load(short_runs["classification"]).predict(texts)))
    assert len(expected) == len(texts)  # distinct sentences: an answer is matched by its content
    with server(short_runs["classification"], tmp_path / "server.log", "--max-wait-ms", "20") as (port, _):
        with ThreadPoolExecutor(64) as pool:
            answers = list(pool.map(lambda body: request(port, "POST", "/predict", body), bodies))
        metrics = request(port, "GET", "/metrics")[2]
    for body, (status, _, answer) in zip(bodies, answers):
        assert status == 200, answer
        assert [p["text"] for p in answer["predictions"]] == body["texts"]  # its own texts, in its order ...
        for prediction in answer["predictions"]:  # ... with the predictions of those texts
            assert prediction["label"] == expected[prediction["text"]]["label"]
            assert prediction["score"] == pytest.approx(expected[prediction["text"]]["score"], abs=1e-5)
    passes, small_passes = batch_passes(metrics, 16)
    assert small_passes < passes  # requests were gathered: some passes ran more texts than two requests hold


def batch_passes(metrics: str, texts: int) -> tuple[float, float]:
    """(forward passes, those with at most `texts` texts) from the server's Prometheus histogram."""
    total = float(metrics.split("stellartune_batch_texts_count ")[1].split()[0])
    return total, float(metrics.split(f'stellartune_batch_texts_bucket{{le="{float(texts)}"}} ')[1].split()[0])


def test_sigterm_finishes_the_requests_in_flight(short_runs, tmp_path):
    sentences = [line.split("\t")[0] for line in data_file("sst2/train.tsv").read_text().splitlines()[1:2049]]
    bodies = [{"texts": sentences[i : i + 64]} for i in range(0, 2048, 64)]
    with server(short_runs["classification"], tmp_path / "server.log") as (port, process):
        with ThreadPoolExecutor(len(bodies)) as pool:
            pending = [pool.submit(request, port, "POST", "/predict", body) for body in bodies]
            time.sleep(1.0)  # all sent; 2,048 texts take the model several seconds
            assert not all(f.done() for f in pending), "every request finished before SIGTERM: nothing was in flight"
            process.send_signal(signal.SIGTERM)
            answers = [f.result() for f in pending]
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status says what stopped it
        assert process.wait(timeout=120) in (0, -signal.SIGTERM)
    for body, (status, _, answer) in zip(bodies, answers):
        assert status == 200, answer
        assert [p["text"] for p in answer["predictions"]] == body["texts"]
    log = (tmp_path / "server.log").read_text()
    assert log.index("Shutting down") < log.index("Finished server process"), log


def test_health_ready_and_a_wrong_model_path(short_runs, tmp_path):
    with server(short_runs["classification"], tmp_path / "server.log") as (port, _):
        assert request(port, "GET", "/health")[:3:2] == (200, {"status": "ok"})
        status, _, ready = request(port, "GET", "/ready")
    assert status == 200 and ready["ready"] is True and ready["labels"] == ["0", "1"]
    wrong = subprocess.run([sys.executable, "-m", "stellartune.cli", "serve", str(tmp_path / "nothing")],
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and wrong.stderr.startswith(f"error: {tmp_path / 'nothing'}: not a stellartune model")


def test_a_lone_surrogate_fails_only_its_own_request_among_concurrent_ones(short_runs, tmp_path):
    sentences = iter(line.split("\t")[0] for line in data_file("sst2/dev.tsv").read_text().splitlines()[1:181])
    bodies = [{"texts": ["\ud800 x"]} if i % 10 == 9 else {"texts": [next(sentences)]} for i in range(200)]
    sentences = [body["texts"][0] for body in bodies if not body["texts"][0].startswith("\ud800")]
    expected = dict(zip(sentences, stellartune.load(short_runs["classification"]).predict(sentences)))
    with server(short_runs["classification"], tmp_path / "server.log", "--max-wait-ms", "50") as (port, _):
        with ThreadPoolExecutor(200) as pool:
            answers = list(pool.map(lambda body: request(port, "POST", "/predict", body), bodies))
    for body, (status, _, answer) in zip(bodies, answers):
        if body["texts"][0].startswith("\ud800"):  # pydantic's strict JSON parsing refuses it, naming the field
            assert status == 422 and answer["error"].startswith("texts[0]: ") and "unicode" in answer["error"], answer
        else:
            assert status == 200, answer
            assert answer["predictions"][0]["label"] == expected[body["texts"][0]]["label"]


def test_a_request_the_model_refuses_fails_alone_while_its_batch_succeeds(short_runs, tmp_path):
    """A question too long for any context window passes the request checks and fails inside the model's
    pass; that request alone gets 422, and the requests sharing its pass get their answers."""
    body, questions, contexts = example_inputs("qa")
    long_question = " ".join(["which"] * 170) + "?"
    bodies = [{"questions": [q], "contexts": [c]} for q, c in zip(questions, contexts)]
    bodies.insert(2, {"questions": [long_question], "contexts": [contexts[0]]})
    expected = stellartune.load(short_runs["qa"]).predict(questions, contexts)
    with server(short_runs["qa"], tmp_path / "server.log", "--max-wait-ms", "500") as (port, _):
        request(port, "POST", "/predict", body)  # one pass before: the next pass waits for as many callers
        with ThreadPoolExecutor(len(bodies)) as pool:
            answers = list(pool.map(lambda body: request(port, "POST", "/predict", body), bodies))
    refused = answers.pop(2)
    assert refused[0] == 422 and "the question is" in refused[2]["error"] and "raise --max-length" in refused[2]["error"]
    assert [a[0] for a in answers] == [200] * len(questions)
    assert [a[2]["predictions"][0]["answer"] for a in answers] == [e["answer"] for e in expected]


def test_bodies_that_are_not_json_or_over_the_limit_get_the_documented_answers(short_runs, tmp_path):
    with server(short_runs["classification"], tmp_path / "server.log") as (port, _):
        status, _, answer = request(port, "POST", "/predict", b'{"texts": ["\xff\xfe"]}',
                                          {"x-request-id": "utf-1"})
        assert (status, answer) == (422, {"error": "the body is not valid JSON (not UTF-8 text, or not JSON)",
                                          "request_id": "utf-1"})
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.putrequest("POST", "/predict")
        connection.putheader("content-type", "application/json")
        connection.putheader("transfer-encoding", "chunked")  # no declared size: counted as it arrives
        connection.putheader("x-request-id", "chunked-1")
        connection.endheaders()
        for _ in range(12):
            connection.send(b"%x\r\n%s\r\n" % (100_000, b" " * 100_000))
        connection.send(b"0\r\n\r\n")
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())) == (
            413, {"error": "request body over 1,000,000 bytes (--max-body-bytes)", "request_id": "chunked-1"})
        status, _, answer = request(port, "GET", "/no-such-path")
        assert status == 404 and set(answer) == {"error", "request_id"}
        schema = request(port, "GET", "/openapi.json")[2]
        docs = request(port, "GET", "/docs")[2]
        assets = [urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60).status
                  for path in re.findall(r'"(/docs-assets/[^"]+)"', docs)]
    predict = schema["paths"]["/predict"]["post"]
    assert {"413", "422", "503"} <= set(predict["responses"]) and "400" not in predict["responses"]
    assert schema["components"]["schemas"]["PredictRequest"]["properties"]["texts"]["items"]["minLength"] == 1
    assert list(schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    assert "http" not in docs and assets == [200, 200, 200]  # Swagger UI from the package: works offline


def test_a_model_that_cannot_load_stops_serve_with_one_line(short_runs, tmp_path):
    for damaged, file in (("weights", "model.safetensors"), ("tokenizer", "tokenizer.json")):
        run = tmp_path / damaged
        shutil.copytree(short_runs["classification"], run)
        (run / "model" / file).write_bytes((run / "model" / file).read_bytes()[:1000])
        result = subprocess.run([sys.executable, "-m", "stellartune.cli", "serve", str(run), "--port",
                                 str(free_port())], capture_output=True, text=True, timeout=120)
        last = result.stderr.strip().splitlines()[-1]
        assert result.returncode == 2 and last.startswith("error: ") and file.split(".")[0] in last, result.stderr
        assert "Traceback" not in result.stderr


def test_ready_names_a_load_failure_without_server_paths(short_runs, tmp_path):
    from fastapi.testclient import TestClient

    from stellartune.serving import create_app

    run = tmp_path / "damaged"
    shutil.copytree(short_runs["classification"], run)
    (run / "model" / "tokenizer.json").write_text("{")
    with TestClient(create_app(run)) as client:
        for _ in range(600):
            answer = client.get("/ready")
            if "could not be loaded" in answer.json()["error"]:
                break
            time.sleep(0.05)
    assert answer.status_code == 503 and "tokenizer" in answer.json()["error"]
    assert str(tmp_path) not in answer.text and str(run) not in answer.text


def test_predict_answers_503_while_the_model_loads(short_runs, tmp_path):
    port = free_port()
    with open(tmp_path / "server.log", "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "stellartune.cli", "serve", str(short_runs["classification"]),
                                    "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(2400):
            with contextlib.suppress(OSError):
                if request(port, "GET", "/health", timeout=2)[0] == 200:
                    break
            time.sleep(0.01)
        status, _, answer = request(port, "POST", "/predict", {"texts": ["A truly brilliant film."]})
        assert (status, answer["error"]) == (503, "the model is still loading; see /ready")
    finally:
        process.kill()
        process.wait()


def test_several_workers_and_an_onnx_folder_serve_what_predict_gives(short_runs, tmp_path):
    body, texts, _ = example_inputs("classification")
    stellartune.export(short_runs["classification"], tmp_path / "onnx")
    for model, flags in ((short_runs["classification"], ("--workers", "2")), (tmp_path / "onnx", ())):
        log = tmp_path / f"{model.name}.log"
        with server(model, log, *flags) as (port, _):
            for _ in range(1200):  # each worker loads its own copy: every one must say it is ready
                if log.read_text().count("model loaded") == (2 if flags else 1):
                    break
                time.sleep(0.1)
            else:
                pytest.fail(f"not every worker loaded the model:\n{log.read_text()}")
            answers = [request(port, "POST", "/predict", body)[2]["predictions"] for _ in range(6)]
        predicted = cli_predictions(model, texts, None, tmp_path)
        assert distinct_answers(predicted) > 1
        for answer in answers:
            assert_same(answer, predicted)
    assert type(stellartune.load(tmp_path / "onnx").model).__name__ == "OnnxClassifier"


def test_max_batch_size_bounds_every_forward_pass(short_runs, tmp_path):
    sentences = [line.split("\t")[0] for line in data_file("sst2/dev.tsv").read_text().splitlines()[1:65]]
    with server(short_runs["classification"], tmp_path / "server.log", "--max-batch-size", "4",
                "--max-wait-ms", "50") as (port, _):
        with ThreadPoolExecutor(64) as pool:
            answers = list(pool.map(lambda s: request(port, "POST", "/predict", {"texts": [s]}), sentences))
        metrics = request(port, "GET", "/metrics")[2]
    assert all(status == 200 for status, _, _ in answers)
    passes, within_four = batch_passes(metrics, 4)
    single = batch_passes(metrics, 1)[1]
    assert within_four == passes and single < passes  # gathered, and never more than 4 texts a pass

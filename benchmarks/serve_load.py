"""Load test of `stellartune serve`: micro-batching on against off (`--max-batch-size 1`), side by side.

Starts the server on a free loopback port and drives it with a bounded closed loop: at each level, N
clients each send one SST-2 dev sentence per request, the next as soon as the last is answered, until
`--requests` requests are done. Prints requests/s, latency percentiles, errors and the batch sizes the
server formed (from its /metrics), and the speed-up of micro-batching at each level.

    .venv/bin/python benchmarks/serve_load.py                    # trains a short SST-2 model first
    .venv/bin/python benchmarks/serve_load.py --model runs/sst2 --levels 1,8,32 --requests 600
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(model: str, log: Path, *flags: str):
    port = free_port()
    with open(log, "w") as handle:
        process = subprocess.Popen([sys.executable, "-m", "stellartune.cli", "serve", model, "--port", str(port), *flags],
                                   stdout=handle, stderr=subprocess.STDOUT)
    try:
        for _ in range(1200):
            if process.poll() is not None:
                sys.exit(f"the server stopped:\n{log.read_text()}")
            with contextlib.suppress(OSError):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/ready")
                if connection.getresponse().status == 200:
                    break
            time.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)


def batch_histogram(port: int) -> tuple[float, float]:
    """(forward passes, texts in them) so far, from the server's Prometheus metrics."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    value = lambda name: float(text.split(f"\n{name} ")[1].split()[0])
    return value("stellartune_batch_texts_count"), value("stellartune_batch_texts_sum")


def drive(port: int, clients: int, requests: int, sentences: list[str]) -> dict:
    """`clients` closed-loop clients (one keep-alive connection each) until `requests` are answered."""
    latencies, errors, lock, issued = [], [], threading.Lock(), [0]

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            with lock:
                if issued[0] >= requests:
                    return
                index = issued[0]
                issued[0] += 1
            body = json.dumps({"texts": [sentences[index % len(sentences)]]})
            started = time.perf_counter()
            try:
                connection.request("POST", "/predict", body=body, headers={"content-type": "application/json"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            with lock:
                (latencies if ok else errors).append(time.perf_counter() - started)

    before = batch_histogram(port)
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    passes, texts = (a - b for a, b in zip(batch_histogram(port), before))
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return {"clients": clients, "requests_per_s": len(latencies) / seconds, "p50_ms": cuts[49] * 1000,
            "p95_ms": cuts[94] * 1000, "p99_ms": cuts[98] * 1000, "errors": len(errors),
            "mean_batch": texts / passes if passes else 0.0, "forward_passes": int(passes)}


def train_model(folder: Path) -> str:
    import stellartune

    train = folder / "train.tsv"
    lines = (DATA / "sst2" / "train.tsv").read_text().splitlines()
    train.write_text("\n".join(lines[:2001]) + "\n")
    # the settings the figures in docs/benchmarks were measured with (the defaults before issue 15); speed is the same
    stellartune.fit(train=str(train), output=str(folder / "run"), epochs=1, progress=False, pooling="model", lr=5e-5,
                    batch_size=32)
    return str(folder / "run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="Run folder to serve (default: train one on 2,000 SST-2 sentences).")
    parser.add_argument("--levels", default="1,8,32", help="Concurrent clients at each level (default: 1,8,32).")
    parser.add_argument("--requests", type=int, default=600, help="Requests at each level (default: 600).")
    args = parser.parse_args()
    sentences = [line.split("\t")[0] for line in (DATA / "sst2" / "dev.tsv").read_text().splitlines()[1:]]
    levels = [int(n) for n in args.levels.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        model = args.model or train_model(Path(scratch))
        results = {}
        for mode, flags in (("micro-batching", ()), ("batch size 1", ("--max-batch-size", "1"))):
            with server(model, Path(scratch) / "server.log", *flags) as port:
                drive(port, 4, 40, sentences)  # warm-up: first forward passes, thread pools
                results[mode] = [drive(port, clients, args.requests, sentences) for clients in levels]
    print("| serving | clients | requests/s | p50 ms | p95 ms | p99 ms | errors | texts per forward pass |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, rows in results.items():
        for r in rows:
            print(f"| {mode} | {r['clients']} | {r['requests_per_s']:.1f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                  f"{r['p99_ms']:.1f} | {r['errors']} | {r['mean_batch']:.1f} ({r['forward_passes']} passes) |")
    for on, off in zip(results["micro-batching"], results["batch size 1"]):
        print(f"{on['clients']} clients: micro-batching serves {on['requests_per_s'] / off['requests_per_s']:.2f}x "
              "the requests/s of batch-size-1 serving")


if __name__ == "__main__":
    main()

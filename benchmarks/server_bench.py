"""Write and search latency of the labswarm server under concurrent clients.

    .venv/bin/python benchmarks/server_bench.py                   # 16 clients, MiniLM
    .venv/bin/python benchmarks/server_bench.py --clients 16 --writes 50 --searches 50

Starts ``labswarm serve`` as a subprocess on a free loopback port over a fresh embedded
store in a temporary directory, seeds it with the Karpathy pack over HTTP, then runs
``--clients`` threads, each with its own ``HTTPStore`` (one agent each): first every
client writes ``--writes`` traces, then every client runs ``--searches`` semantic
searches. Prints p50 / p95 / p99 / max latency and throughput per phase.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memory._http import HTTPStore  # noqa: E402
from memory.models import ExperimentCreate, Status  # noqa: E402

TOKEN = "bench-token"
QUERIES = [
    "raise the learning rate",
    "weight decay on embeddings",
    "deeper model with more layers",
    "shorter warmup",
    "change the batch size",
    "rotary embedding base",
    "initialisation scale",
    "attention window size",
]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def report(name: str, latencies: list[float], wall: float) -> None:
    ms = [x * 1000 for x in latencies]
    print(
        f"{name:<8} n={len(ms):<5} p50={percentile(ms, 0.5):7.1f} ms  "
        f"p95={percentile(ms, 0.95):7.1f} ms  p99={percentile(ms, 0.99):7.1f} ms  "
        f"max={max(ms):7.1f} ms  mean={statistics.fmean(ms):7.1f} ms  "
        f"throughput={len(ms) / wall:6.1f}/s"
    )


def start_server(home: Path, port: int, embedder: str, log: IO[str]) -> subprocess.Popen[bytes]:
    labswarm = Path(sys.executable).with_name("labswarm")
    proc = subprocess.Popen(
        [str(labswarm), "serve", "--memory", str(home), "--port", str(port), "--token", TOKEN],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=os.environ | {"LABSWARM_EMBEDDER": embedder},
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("server did not start; see its log") from None
            time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--writes", type=int, default=25, help="traces per client")
    parser.add_argument("--searches", type=int, default=25, help="searches per client")
    parser.add_argument("--embedder", default="minilm", choices=["minilm", "hash"])
    parser.add_argument(
        "--dir", default=None, help="where the store lives (default: the system temp dir)"
    )
    parser.add_argument("--pack", default=str(ROOT / "seeds" / "karpathy-h100-mar8.jsonl"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="labswarm-bench-", dir=args.dir) as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        log = open(Path(tmp) / "server.log", "w")  # noqa: SIM115 - closed below
        proc = start_server(Path(tmp) / "memory", port, args.embedder, log)
        print(f"server up in {time.perf_counter() - t0:.1f} s on {url} (embedder {args.embedder})")
        try:
            pack = Path(args.pack)
            if pack.exists():
                headers = {"Authorization": f"Bearer {TOKEN}"}
                t0 = time.perf_counter()
                result = httpx.post(
                    f"{url}/api/packs",
                    content=pack.read_bytes(),
                    headers=headers | {"Content-Type": "application/x-ndjson"},
                    timeout=600,
                ).json()
                print(f"seeded {pack.name}: {result} in {time.perf_counter() - t0:.1f} s")
            # one search first so the model load is not counted as a search latency
            with HTTPStore(url, token=TOKEN) as warm:
                warm.search("warm up", limit=1)

            lock = threading.Lock()
            writes: list[float] = []
            searches: list[float] = []

            def writer(client: int) -> None:
                mine = []
                with HTTPStore(url, token=TOKEN) as store:
                    for n in range(args.writes):
                        trace = ExperimentCreate(
                            task="bench",
                            agent_id=f"client-{client}",
                            fingerprint=f"c{client}-{n}",
                            status=Status.discard if n % 4 else Status.keep,
                            metric=1.0 - n / 10_000,
                            hypothesis=f"{QUERIES[n % len(QUERIES)]} (client {client}, #{n})",
                            diff=f"-LR = 0.04\n+LR = {0.04 + n / 1000}\n",
                        )
                        start = time.perf_counter()
                        store.add_trace(trace)
                        mine.append(time.perf_counter() - start)
                with lock:
                    writes.extend(mine)

            def searcher(client: int) -> None:
                mine = []
                with HTTPStore(url, token=TOKEN) as store:
                    for n in range(args.searches):
                        start = time.perf_counter()
                        hits = store.search(QUERIES[(client + n) % len(QUERIES)], limit=10)
                        mine.append(time.perf_counter() - start)
                        assert hits, "search returned nothing"
                with lock:
                    searches.extend(mine)

            for name, fn, out in (("write", writer, writes), ("search", searcher, searches)):
                t0 = time.perf_counter()
                with ThreadPoolExecutor(args.clients) as pool:
                    list(pool.map(fn, range(args.clients)))
                report(name, out, time.perf_counter() - t0)
            print(
                f"clients={args.clients} cpus={os.cpu_count()} store in {tmp} "
                f"python={sys.version.split()[0]}"
            )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

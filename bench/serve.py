"""Throughput and latency of the web service against the other ways to read images.

    python bench/serve.py                                     # examples/, 1, 4 and 16 clients
    python bench/serve.py --images examples/card.jpg --clients 1 --requests 2 --cli-requests 1

Prints one table: requests/s and p50/p95 latency (ms) at each number of concurrent clients for

- ``service``: ``python infer.py --serve`` (started once, models loaded and warmed), each
  client posting images to ``POST /ocr`` one after another (httpx);
- ``infer.py per image``: ``python infer.py IMAGE`` started for every image (process start,
  imports, model loading and compilation, or the persistent compilation cache, each time),
  that many processes at once;
- ``OCR() loop``: one process calling ``OCR()(image)`` image after image (one client only:
  an ``OCR`` object is not meant to be shared between threads; the service is how to share
  one).

Extra arguments after ``--`` go to ``infer.py`` (e.g. ``-- --device cpu``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(clients: int, requests: int, one: Callable[[int], None]) -> dict[str, float]:
    """Runs ``requests`` calls of ``one(i)`` on ``clients`` threads; wall time and latencies."""
    latencies: list[float] = []

    def timed(i: int) -> None:
        t0 = time.perf_counter()
        one(i)
        latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(timed, i) for i in range(requests)]:
            f.result()
    wall = time.perf_counter() - t0
    ms = np.asarray(latencies) * 1000
    return {
        "n": len(latencies),
        "rps": len(latencies) / wall,
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
    }


def bench_service(
    images: Sequence[Path], clients: Sequence[int], requests: int, extra: Sequence[str]
) -> list[tuple]:
    import httpx

    port = free_port()
    cmd = [sys.executable, "infer.py", "--serve", "--port", str(port), *extra]
    server = subprocess.Popen(cmd, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = time.perf_counter()
        while True:  # load and warm-up
            if server.poll() is not None:
                raise SystemExit(f"the service exited with status {server.returncode}")
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        print(f"service ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        data = [p.read_bytes() for p in images]
        rows = []
        with httpx.Client(base_url=url, timeout=600, limits=httpx.Limits(max_connections=64)) as c:

            def one(i: int) -> None:
                k = i % len(images)
                r = c.post("/ocr", files={"image": (images[k].name, data[k])})
                r.raise_for_status()

            for n in clients:
                rows.append(("service", n, measure(n, max(requests, n), one)))
        return rows
    finally:
        server.send_signal(signal.SIGTERM)  # the graceful shutdown
        server.wait(60)


def bench_cli(
    images: Sequence[Path], clients: Sequence[int], requests: int, extra: Sequence[str]
) -> list[tuple]:
    rows = []
    with tempfile.TemporaryDirectory() as out:

        def one(i: int) -> None:
            cmd = [sys.executable, "infer.py", str(images[i % len(images)]), "--quiet"]
            cmd += ["--no-draw", "--out", os.path.join(out, str(i)), *extra]
            subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)

        for n in clients:
            rows.append(("infer.py per image", n, measure(n, max(requests, n), one)))
    return rows


def bench_loop(images: Sequence[Path], requests: int) -> list[tuple]:
    from infer import OCR
    from ocr_common.io import read_image

    ocr = OCR()
    pixels = [read_image(p) for p in images]
    ocr(pixels[0])  # compile, as the service's warm-up does
    return [("OCR() loop", 1, measure(1, requests, lambda i: ocr(pixels[i % len(pixels)])))]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", nargs="+", type=Path, default=[REPO / "examples"])
    p.add_argument("--clients", default="1,4,16", help="concurrent clients (default: %(default)s)")
    p.add_argument("--requests", type=int, default=48, help="requests a cell (service, loop)")
    p.add_argument("--cli-requests", type=int, default=8, help="runs a cell of infer.py per image")
    p.add_argument("--skip", default="", help="comma-separated: service, cli, loop")
    args = p.parse_args(argv)
    images = [
        f for path in args.images for f in (sorted(path.glob("*.jpg")) if path.is_dir() else [path])
    ]
    if not images:
        p.error("no images")
    clients = [int(c) for c in args.clients.split(",")]
    skip = set(filter(None, args.skip.split(",")))
    rows = []
    if "service" not in skip:
        rows += bench_service(images, clients, args.requests, extra)
    if "cli" not in skip:
        rows += bench_cli(images, clients, args.cli_requests, extra)
    if "loop" not in skip:
        rows += bench_loop(images, args.requests)
    print(f"\n{len(images)} image(s); latency in ms\n")
    print("| method | clients | requests | req/s | p50 | p95 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, n, m in rows:
        print(f"| {name} | {n} | {m['n']} | {m['rps']:.2f} | {m['p50']:.0f} | {m['p95']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

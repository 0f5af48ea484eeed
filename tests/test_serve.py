"""Tests of the web service (`ocr_app.serve`) against real servers: uvicorn in a thread on a
free loopback port, httpx as the client, the tiny random models of tests/conftest.py.

The servers' `OCR` objects share the session `ocr` fixture's detector and recogniser, so
nothing is compiled twice; `HeldOCR` lets a test hold the worker busy.
"""

from __future__ import annotations

import concurrent.futures
import json
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import uvicorn

import infer
from ocr_app import cli
from ocr_app.serve import ServeConfig, create_app
from tests.helpers import page


class HeldOCR(infer.OCR):
    """An `OCR` whose `read_pages` waits while `hold` is clear, and records batch sizes."""

    def __init__(self, base: infer.OCR):
        super().__init__(
            detector=base.detector,
            recognizer=base.recognizer,
            batch_size=base.batch_size,
            compilation_cache=False,
            min_text_score=None,
        )
        self.hold, self.entered = threading.Event(), threading.Event()
        self.hold.set()
        self.batches: list[int] = []

    def read_pages(self, images, images_per_batch=8, preview_side=None):
        images = list(images)
        self.batches.append(len(images))
        self.entered.set()
        assert self.hold.wait(60), "the test never released the worker"
        yield from super().read_pages(images, images_per_batch, preview_side)


class LiveServer:
    """uvicorn serving `app` in a thread on a free loopback port."""

    def __init__(self, app):
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self, ready: bool = True) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)
        while ready and httpx.get(self.url + "/health").status_code != 200:
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True  # what uvicorn's SIGTERM handler does
        self.thread.join(60)
        assert not self.thread.is_alive()
        self.sock.close()


def small_config(**kw) -> ServeConfig:
    kw = {"min_text_score": None, "warmup_sizes": ((96, 160),), "timeout_s": 60.0, **kw}
    return ServeConfig(**kw)


@pytest.fixture(scope="module")
def held(ocr) -> HeldOCR:
    return HeldOCR(ocr)


@pytest.fixture(scope="module")
def server(held) -> Iterator[LiveServer]:
    config = small_config(max_upload_bytes=200_000, max_pixels=1_000_000, max_files=8)
    live = LiveServer(create_app(lambda: held, config)).start()
    yield live
    live.stop()


def png(img: np.ndarray) -> bytes:
    """PNG bytes of an RGB(A) or gray array (any dtype cv2 writes)."""
    if img.ndim == 3:
        img = img[..., [2, 1, 0, 3]] if img.shape[2] == 4 else img[..., ::-1]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img))
    assert ok
    return buf.tobytes()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width x height` pixels (a decompression bomb's
    header: the check must refuse it before decoding)."""
    data = bytearray(png(np.zeros((1, 1), np.uint8)))
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def post_one(url: str, data: bytes, name: str = "page.png", **params) -> httpx.Response:
    files = {"image": (name, data, "application/octet-stream")}
    return httpx.post(url + "/ocr", files=files, params=params, timeout=60)


def check_schema(doc: dict, name: str, width: int, height: int) -> None:
    assert set(doc) == {"image", "width", "height", "lines", "timings"}
    assert (doc["image"], doc["width"], doc["height"]) == (name, width, height)
    assert {"decode", "queue", "detect", "recognise", "total"} <= set(doc["timings"])
    for line in doc["lines"]:
        assert set(line) == {"box", "text", "score", "text_score"}
        assert len(line["box"]) == 8 and all(isinstance(v, float) for v in line["box"])
        assert isinstance(line["text"], str)


# ----------------------------------------------------------------------------- results


def test_health_and_page(server):
    r = httpx.get(server.url + "/health")
    assert (r.status_code, r.json()) == (200, {"status": "ready"})
    r = httpx.get(server.url + "/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<canvas" in r.text and 'fetch(url, { method: "POST"' in r.text


def test_results_equal_read_many_and_the_command_line(server, ocr, tmp_path):
    img = page(96, 160, seed=3)
    path = tmp_path / "scan.png"
    path.write_bytes(png(img))
    expected = ocr.read_many([path])[0]
    assert expected, "the tiny detector finds lines in every page"
    cli.run([path], ocr, tmp_path / "out", draw=False, quiet=True)
    written = json.loads((tmp_path / "out" / "scan.json").read_text(encoding="utf-8"))
    assert written["lines"] == expected

    r = post_one(server.url, path.read_bytes(), "scan.png")
    assert r.status_code == 200, r.text
    doc = r.json()
    check_schema(doc, "scan.png", 160, 96)
    assert doc["lines"] == written["lines"]
    # the raw body, named by ?name=
    r = httpx.post(server.url + "/ocr", content=path.read_bytes(), params={"name": "raw.png"})
    assert r.status_code == 200 and r.json()["lines"] == expected
    assert r.json()["image"] == "raw.png"


def test_query_parameters(server, ocr):
    img = page(96, 160, seed=4)
    every = ocr.read_many([img])[0]
    assert post_one(server.url, png(img), min_text_score=-1).json()["lines"] == every
    strict = post_one(server.url, png(img), min_text_score=0.9).json()["lines"]
    assert strict == [r for r in every if infer.keeps_line(r["text"], r["text_score"], 0.9)]
    assert post_one(server.url, png(img), mode="H").status_code == 200
    r = post_one(server.url, png(img), mode="O")
    assert r.status_code == 400 and "--mode O" in r.json()["error"]
    r = post_one(server.url, png(img), min_text_score="high")
    assert r.status_code == 400 and "min_text_score" in r.json()["error"]


def test_batch_keeps_order_and_reports_a_bad_image_alone(server, ocr):
    imgs = [page(96, 160, seed=s) for s in (5, 6)] + [page(64, 200, seed=7)]
    expected = ocr.read_many(imgs)
    files = [
        ("image", ("a.png", png(imgs[0]))),
        ("image", ("broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")),
        ("image", ("b.png", png(imgs[1]))),
        ("image", ("c.png", png(imgs[2]))),
    ]
    r = httpx.post(server.url + "/ocr/batch", files=files, timeout=60)
    assert r.status_code == 200, r.text
    docs = r.json()
    assert [d["image"] for d in docs] == ["a.png", "broken.jpg", "b.png", "c.png"]
    assert docs[1] == {"image": "broken.jpg", "error": docs[1]["error"]}
    assert "broken.jpg: not a readable image" in docs[1]["error"]
    for doc, lines, img in zip([docs[0], docs[2], docs[3]], expected, imgs, strict=True):
        check_schema(doc, doc["image"], img.shape[1], img.shape[0])
        assert doc["lines"] == lines
    r = httpx.post(server.url + "/ocr/batch", files=[("image", ("x.png", b""))] * 9, timeout=60)
    assert r.status_code in (400, 413) and "error" in r.json()


def test_sixteen_concurrent_clients(server, held, ocr):
    imgs = [page(96, 160, seed=s) for s in range(3)] + [page(80, 128, seed=9)]
    uploads = [png(img) for img in imgs]
    expected = ocr.read_many(imgs)
    held.batches.clear()
    stop_at = time.monotonic() + 4.0

    def client(k: int) -> int:
        n = 0
        with httpx.Client(base_url=server.url, timeout=60) as c:
            while time.monotonic() < stop_at or n == 0:
                i = (k + n) % len(imgs)
                r = c.post("/ocr", files={"image": (f"{k}-{n}.png", uploads[i])})
                assert r.status_code == 200, r.text
                assert r.json()["lines"] == expected[i] and r.json()["image"] == f"{k}-{n}.png"
                n += 1
        return n

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        counts = list(pool.map(client, range(16)))
    assert all(n >= 1 for n in counts)
    assert sum(held.batches) == sum(counts)  # every request read once, none lost
    assert max(held.batches) > 1, "concurrent requests should share batches"


# ----------------------------------------------------------------------------- bad uploads


def test_bad_uploads(server, ocr):
    cases = {
        "corrupt.jpg": (b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, 400, "not a readable image"),
        "empty.png": (b"", 400, "empty file"),
        "notes.txt": (b"just some text\n" * 10, 400, "not a readable image"),
        "bomb.png": (png_claiming(50_000, 50_000), 413, "more than the limit"),
        "big.bin": (bytes(300_000), 413, "larger than the limit"),
    }
    for name, (data, status, message) in cases.items():
        r = post_one(server.url, data, name)
        assert r.status_code == status, (name, r.text)
        assert message in r.json()["error"], (name, r.json())
        if status == 400:
            assert r.json()["error"].startswith(name)
    r = httpx.post(server.url + "/ocr", content=b"")  # an empty raw body
    assert r.status_code == 400 and "upload: empty file" in r.json()["error"]
    r = httpx.post(server.url + "/ocr", files={"other": ("x.png", png(page()))})
    assert r.status_code == 400 and "'image'" in r.json()["error"]
    r = httpx.post(server.url + "/ocr", data={"image": "text"}, files={"x": ("x.png", b"1")})
    assert r.status_code == 400 and "not a file upload" in r.json()["error"]
    r = httpx.post(server.url + "/ocr", data={"image": "text"})
    assert r.status_code == 400 and "url-encoded form holds no file" in r.json()["error"]

    # 16-bit and RGBA PNGs read as their 8-bit RGB pixels
    img = page(96, 160, seed=11)
    expected = ocr.read_many([img])[0]
    wide = png(img.astype(np.uint16) * 257)
    rgba = png(np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=2))
    gray = png(img[..., 1])
    for name, data in (("16bit.png", wide), ("rgba.png", rgba)):
        r = post_one(server.url, data, name)
        assert r.status_code == 200, r.text
        check_schema(r.json(), name, 160, 96)
        assert r.json()["lines"] == expected
    r = post_one(server.url, gray, "gray.png")
    assert r.status_code == 200 and r.json()["lines"] == ocr.read_many([img[..., 1]])[0]
    assert httpx.get(server.url + "/health").status_code == 200  # still serving


# ----------------------------------------------------------------------------- limits


def test_queue_full_gives_503_and_loses_nothing(ocr):
    held = HeldOCR(ocr)
    live = LiveServer(create_app(lambda: held, small_config(queue_size=1, max_batch=1))).start()
    try:
        data = png(page(seed=12))
        held.hold.clear()
        held.entered.clear()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            first = pool.submit(post_one, live.url, data, "first.png")
            assert held.entered.wait(30)  # the worker holds the first image
            second = pool.submit(post_one, live.url, data, "second.png")
            worker = live.app.state.worker
            deadline = time.monotonic() + 30
            while worker._queue.qsize() < 1:  # the second waits in the queue
                assert time.monotonic() < deadline
                time.sleep(0.01)
            r = post_one(live.url, data, "third.png")
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert "busy" in r.json()["error"]
            r = httpx.post(live.url + "/ocr/batch", files=[("image", ("b.png", data))])
            assert r.status_code == 503
            held.hold.set()
            assert first.result().status_code == 200 and second.result().status_code == 200
            assert first.result().json()["image"] == "first.png"
            assert second.result().json()["image"] == "second.png"
    finally:
        held.hold.set()
        live.stop()


def test_timeout_gives_504_and_the_server_goes_on(ocr):
    held = HeldOCR(ocr)
    live = LiveServer(create_app(lambda: held, small_config(timeout_s=0.5))).start()
    try:
        held.hold.clear()
        r = post_one(live.url, png(page(seed=13)), "slow.png")
        assert r.status_code == 504 and "slow.png: no result within 0.5 s" in r.json()["error"]
        held.hold.set()
        assert post_one(live.url, png(page(seed=13))).status_code == 200
    finally:
        held.hold.set()
        live.stop()


def test_health_is_503_until_loaded_and_shutdown_drains(ocr):
    loaded = threading.Event()
    held = HeldOCR(ocr)

    def load() -> infer.OCR:
        assert loaded.wait(60)
        return held

    live = LiveServer(create_app(load, small_config())).start(ready=False)
    try:
        r = httpx.get(live.url + "/health")
        assert (r.status_code, r.json()["status"]) == (503, "loading")
        r = post_one(live.url, png(page()))
        assert r.status_code == 503 and "loading" in r.json()["error"]
        loaded.set()
        deadline = time.monotonic() + 60
        while httpx.get(live.url + "/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # a request in flight when the server is told to stop still gets its result
        held.hold.clear()
        held.entered.clear()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(post_one, live.url, png(page(seed=14)), "last.png")
            assert held.entered.wait(30)
            live.server.should_exit = True
            time.sleep(0.3)
            held.hold.set()
            r = pending.result()
        assert r.status_code == 200 and r.json()["image"] == "last.png"
    finally:
        loaded.set()
        held.hold.set()
        live.stop()
    assert live.app.state.worker.state == "stopped"


def test_failed_load_is_reported(ocr):
    def load() -> infer.OCR:
        raise RuntimeError("no weights here")

    live = LiveServer(create_app(load, small_config())).start(ready=False)
    try:
        deadline = time.monotonic() + 30
        while (r := httpx.get(live.url + "/health")).json()["status"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert r.status_code == 503 and "no weights here" in r.json()["error"]
    finally:
        live.stop()


def test_cli_serve_arguments(capsys, monkeypatch, tiny_weights, tmp_path):
    args = cli.parse_args(["--serve", "--port", "0", "--max-batch", "4"])
    assert args.serve and args.paths == [] and args.max_batch == 4
    for argv, message in (([], "--serve"), (["--serve", "x.jpg"], "reads no PATHs")):
        with pytest.raises(SystemExit):
            cli.parse_args(argv)
        assert message in capsys.readouterr().err
    # missing weights: said at once, before any server starts
    assert cli.main(["--serve", "--weights-det", str(tmp_path / "none.npz")]) == 2
    assert "none.npz not found" in capsys.readouterr().err
    # the flags reach the service
    from ocr_app import serve

    seen = {}
    monkeypatch.setattr(serve, "serve", lambda load, host, port, config: seen.update(locals()))
    det, rec = tiny_weights
    argv = ["--serve", "--host", "0.0.0.0", "--port", "9", "--mode", "O", "--min-text-score", "-1"]
    argv += ["--weights-det", str(det), "--weights-rec", str(rec), "--queue-size", "3"]
    cli.main(argv)
    assert (seen["host"], seen["port"]) == ("0.0.0.0", 9)
    config = seen["config"]
    assert (config.mode, config.min_text_score, config.queue_size) == ("O", None, 3)


def test_decode_image_names_the_problem():
    from ocr_common.io import ImageError, ImageTooLarge, decode_image

    # the header says too many: refused before decoding (the data holds no such pixels)
    with pytest.raises(ImageTooLarge, match="bomb.png: 10000x10000 pixels is more than"):
        decode_image(png_claiming(10_000, 10_000), "bomb.png", max_pixels=40_000_000)
    with pytest.raises(ImageTooLarge, match="huge.png: more than the limit"):  # Pillow's own
        decode_image(png_claiming(50_000, 50_000), "huge.png", max_pixels=40_000_000)
    with pytest.raises(ImageTooLarge, match="p: 160x96 pixels"):  # a real image, decoded
        decode_image(png(page(seed=15)), "p", max_pixels=100)
    with pytest.raises(ImageError, match="x: empty file"):
        decode_image(b"", "x")
    rgb = page(seed=15)
    assert np.array_equal(decode_image(png(rgb), "p"), rgb)


# ----------------------------------------------------------------------------- the page


def test_page_in_a_headless_browser(server, tmp_path):
    """Uploads examples/card.jpg through the page in headless Chromium: the lines the service
    returns appear, with the image and boxes drawn on the canvas. Needs Debian's chromium and
    chromium-driver (.ci/run installs them) and selenium (the test extra).

    ``OCR_PAGE_SCREENSHOT=docs/serve.png`` saves the screenshot there."""
    import os
    import shutil

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        # CI installs them (.ci/run): there a missing browser is a failure, not a skip.
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are missing; .ci/run installs them")
        pytest.skip("chromium and chromium-driver are not installed (apt-get install them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    image = Path(infer.__file__).resolve().parent / "examples" / "card.jpg"
    expected = post_one(server.url, image.read_bytes(), "card.jpg").json()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        driver.get(server.url + "/")
        driver.find_element(By.ID, "file").send_keys(str(image))
        WebDriverWait(driver, 60).until(
            lambda d: (
                "line(s)" in d.find_element(By.ID, "status").text
                or "Error" in d.find_element(By.ID, "status").text
            )
        )
        status = driver.find_element(By.ID, "status").text
        assert status.startswith(f"{len(expected['lines'])} line(s)"), status
        texts = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#lines li .text")]
        assert texts == [line["text"] for line in expected["lines"]]
        size = driver.execute_script(
            "const c = document.getElementById('canvas'); return [c.width, c.height];"
        )
        assert size == [expected["width"], expected["height"]]
        assert driver.find_element(By.ID, "download").is_enabled()
        shot = Path(os.environ.get("OCR_PAGE_SCREENSHOT") or tmp_path / "page.png")
        assert driver.save_screenshot(str(shot))
    finally:
        driver.quit()

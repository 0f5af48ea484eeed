"""Where a warm image's time goes: our OCR stage by stage, one image per call.

    python bench/profile_e2e.py [--sets examples real] [--every 8] [--weights-det W]

Each image is read once to compile its shapes (not timed), then again with every stage
timed by wrappers around the objects `infer.OCR` uses:

  read                 file -> RGB array (`as_rgb`)
  det resize+pad       resize to the test scale and pad to a bucket (main and coarse pass)
  det network main     the CTPN forward at the main scale (blocked until done)
  det network coarse   the forward of the coarse pass for large text, where it runs
  det post-process     anchors -> text lines (`lines_from_outputs`), both passes
  det coarse merge     `merge_coarse`
  crop                 perspective crops -> 32-px gray lines (`OCR.crop_lines`)
  rec network W        the recogniser forward per width bucket W (first reading)
  rec decode           greedy decoding with the look-alike prior (first reading)
  rec re-read          dense lines read again stretched (network and decoding)
  rec upside-down      a poorly read page's lines read again turned (`OCR.read_upside_down`)
  other                what the wrappers leave (reading order, records, Python)

Sets: `examples` (the repository's examples) and `real` (`../shared/real/images`, every
`--every`-th image in name order). Prints one table per set: seconds per image (mean over
the set) and share of the total, plus the median total per image and the compiled shapes.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path

import jax

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SETS = {"examples": REPO / "examples", "real": REPO.parent / "shared" / "real" / "images"}


def images_of(folder: Path, every: int) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return files[::every]


class Profiler:
    """Wraps the stages of an `infer.OCR` in timers; `totals` holds seconds per stage."""

    def __init__(self, ocr):
        import infer

        self.totals: dict[str, float] = collections.defaultdict(float)
        self.on = False
        self.mute = 0  # inside a stage timed as a whole
        det, rec = ocr.detector, ocr.recognizer
        self.det_shapes: set = set()
        self.rec_shapes: set = set()
        infer.as_rgb = self.timer(infer.as_rgb, "read")
        forward = det._forward
        coarse_flag = {"coarse": False}

        def det_forward(v, images, vw):
            self.det_shapes.add(images.shape)
            t = time.perf_counter()
            out = jax.block_until_ready(forward(v, images, vw))
            key = "det network coarse" if coarse_flag["coarse"] else "det network main"
            self.add(key, time.perf_counter() - t)
            self.add("det resize+pad", -(time.perf_counter() - t))  # taken out again below
            return out

        det._forward = det_forward
        outputs = det.network_outputs

        def network_outputs(image, coarse=False):
            coarse_flag["coarse"] = coarse
            t = time.perf_counter()
            try:
                return outputs(image, coarse=coarse)
            finally:
                self.add("det resize+pad", time.perf_counter() - t)

        det.network_outputs = network_outputs
        det.lines_from_outputs = self.timer(det.lines_from_outputs, "det post-process")
        det.merge_coarse = self.timer(det.merge_coarse, "det coarse merge")
        ocr.crop_lines = self.timer(ocr.crop_lines, "crop")

        predict = rec._predict_probs
        reading = {"first": True}

        def rec_predict(v, batch):
            self.rec_shapes.add(batch.shape)
            t = time.perf_counter()
            out = jax.block_until_ready(predict(v, batch))
            dt = time.perf_counter() - t
            if reading["first"]:
                self.add(f"rec network W={batch.shape[2]}", dt)
                self.add("rec decode", -dt)
            return out

        rec._predict_probs = rec_predict
        read = rec._read

        def rec_read(lines, decoder, batch_size, bar=None):
            t = time.perf_counter()
            try:
                return read(lines, decoder, batch_size, bar)
            finally:
                key = "rec decode" if reading["first"] else "rec re-read"
                self.add(key, time.perf_counter() - t)
                reading["first"] = False

        rec._read = rec_read
        lines = rec.recognize_lines

        def recognize_lines(*args, **kwargs):
            reading["first"] = True
            return lines(*args, **kwargs)

        rec.recognize_lines = recognize_lines
        upside_down = ocr.read_upside_down

        def read_upside_down(*args, **kwargs):
            t = time.perf_counter()
            self.mute += 1
            try:
                return upside_down(*args, **kwargs)
            finally:
                self.mute -= 1
                self.add("rec upside-down", time.perf_counter() - t)

        ocr.read_upside_down = read_upside_down

    def add(self, key: str, seconds: float) -> None:
        if self.on and not self.mute:
            self.totals[key] += seconds

    def timer(self, fn, key: str):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(key, time.perf_counter() - t)

        return wrapper


def profile(ocr, profiler: Profiler, images: list[Path]) -> tuple[dict, list[float]]:
    for path in images:  # compile every shape first
        ocr(path)
    profiler.totals.clear()
    profiler.on = True
    per_image = []
    for path in images:
        t = time.perf_counter()
        ocr(path)
        per_image.append(time.perf_counter() - t)
    profiler.on = False
    totals = dict(profiler.totals)
    totals["other"] = sum(per_image) - sum(totals.values())
    return totals, per_image


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", nargs="+", choices=tuple(SETS), default=tuple(SETS))
    p.add_argument("--every", type=int, default=8, help="take every N-th real image")
    p.add_argument("--weights-det", default=None)
    p.add_argument("--weights-rec", default=None)
    args = p.parse_args()

    from infer import OCR

    ocr = OCR(args.weights_det, args.weights_rec, compilation_cache=False)
    profiler = Profiler(ocr)
    for name in args.sets:
        images = images_of(SETS[name], args.every if name == "real" else 1)
        totals, per_image = profile(ocr, profiler, images)
        n = len(images)
        total = sum(per_image)
        print(f"\n### {name}: {n} images, warm, one image per call")
        print(f"median {statistics.median(per_image):.3f} s/image, mean {total / n:.3f}")
        print("\n| stage | s/image | share |\n| --- | ---: | ---: |")
        for key, sec in sorted(totals.items(), key=lambda kv: -kv[1]):
            print(f"| {key} | {sec / n:.3f} | {100 * sec / total:.1f}% |")
    print(
        f"\ncompiled shapes: detector {sorted(profiler.det_shapes)}; "
        f"recogniser {len(profiler.rec_shapes)} {sorted(profiler.rec_shapes)}"
    )


if __name__ == "__main__":
    main()

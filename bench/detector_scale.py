"""Detector test scale against accuracy and time: several `TextDetector` settings read the
same images in turn, image by image, with one recogniser.

    python bench/detector_scale.py --sets dev real --every 2 \
        --setting default --setting max_upscale=1.0 --setting short_side=720,long_side=1200

A setting is `default` (the shipped file's test scale) or comma-separated `key=value`
overrides of `TextDetector.from_weights` (`short_side`, `long_side`, `max_upscale`,
`coarse_scale`, ...) and, prefixed `rec.`, of `Recognizer` (`rec.trims=default` (the
recogniser's views; `OCR` reads without them), `rec.trims=0.05/0.1`, `rec.trim_below=0.9`,
`rec.reread_scales=none`); every setting reads as `infer.OCR` does (no trimmed views)
unless it names `rec.trims`. For each set and setting: warm seconds per image (median over
the images; an image that compiled a new shape is read again), and
`../shared/dev/ocr_eval.py e2e`: detection P / R / H at IoU 0.5, normalised CER, exact
lines, character-bag F.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from e2e import ACCURACY_HEADER, accuracy_cells, score  # noqa: E402

SHARED = REPO.parent / "shared"
SETS = {
    "examples": (REPO / "examples", REPO / "examples" / "gt"),
    "dev": (SHARED / "dev" / "images", SHARED / "dev" / "gt"),
    "real": (SHARED / "real" / "images", SHARED / "real" / "gt"),
}


def parse_setting(text: str) -> tuple[dict, dict]:
    """`(detector overrides, recogniser overrides)` of a setting."""
    from densenet_jax.recognizer import parse_reread_scales, parse_trims

    det, rec = {}, {}
    if text == "default":
        return det, rec
    for item in text.split(","):
        key, _, value = item.partition("=")
        if key == "rec.trims":
            rec["trims"] = parse_trims(value.replace("/", ","))
        elif key == "rec.reread_scales":
            rec["reread_scales"] = parse_reread_scales(value.replace("/", ","))
        elif key.startswith("rec."):
            rec[key[4:]] = float(value)
        else:
            det[key] = float(value) if key in ("max_upscale", "coarse_scale") else int(value)
    return det, rec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", nargs="+", choices=tuple(SETS), default=["dev"])
    p.add_argument("--every", type=int, default=1, help="take every N-th image of 'real'")
    p.add_argument("--setting", action="append", required=True)
    p.add_argument("--weights-det", default=None)
    p.add_argument("--weights-rec", default=None)
    p.add_argument("--out", type=Path, default=Path("/tmp/detector_scale"))
    args = p.parse_args()

    from ctpn_jax.detect import TextDetector
    from densenet_jax.recognizer import Recognizer
    from infer import OCR, pipeline_recognizer_options, require_weights

    base = OCR(args.weights_det, args.weights_rec, compilation_cache=False).recognizer
    det_path = require_weights(args.weights_det, "det")
    systems = {}
    for s in args.setting:
        det, rec = parse_setting(s)
        systems[s] = OCR(
            detector=TextDetector.from_weights(det_path, post={"mode": "H"}, **det),
            # The pipeline's reading unless the setting says otherwise (a setting of
            # rec.trim_below alone must not turn on the Recognizer's default views).
            recognizer=(
                Recognizer(
                    base.model, base.variables, base.charset, **pipeline_recognizer_options(rec)
                )
                if rec
                else base
            ),
            compilation_cache=False,
        )
    rows = []
    for set_name in args.sets:
        folder, gt = SETS[set_name]
        images = sorted(f for f in folder.iterdir() if f.suffix.lower() in (".jpg", ".png"))
        images = images[:: args.every] if set_name == "real" else images
        times = {s: [] for s in systems}
        preds = {s: {} for s in systems}
        for i, path in enumerate(images):
            for name, ocr in systems.items():
                for _ in range(2):  # again when this image compiled a new shape
                    compiled = ocr.recognizer._predict_probs.shapes_seen()
                    t = time.perf_counter()
                    found = ocr(path)
                    seconds = time.perf_counter() - t
                    compiled = compiled != ocr.recognizer._predict_probs.shapes_seen()
                    if not (compiled or ocr.detector._last_compiled):
                        break
                times[name].append(seconds)
                preds[name][path.name] = [
                    {"box": r["box"], "text": r["text"], "score": r["score"]} for r in found
                ]
            print(f"\r{set_name} {i + 1}/{len(images)}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        work = args.out / set_name
        work.mkdir(parents=True, exist_ok=True)
        base_time = statistics.median(times[args.setting[0]])
        for name, found in preds.items():
            r = score(found, gt, work, name.replace("/", "_"), SHARED / "dev" / "ocr_eval.py")
            med = statistics.median(times[name])
            rows.append(
                f"| {set_name} ({len(images)}) | {name} {accuracy_cells(r)} {med:.3f} "
                f"| {med / base_time:.2f} |"
            )
    print(f"\n| images | setting {ACCURACY_HEADER} warm s/image (median) | vs first setting |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

"""End-to-end OCR of whole images: ours (infer.py) vs RapidOCR and Tesseract, in one run.

    python bench/e2e.py [--sets examples dev] [--repeats 3] [--out ocr_results/bench_e2e]

Image sets: `examples` (the repository's rendered examples, ground truth in examples/gt)
and `dev` (the real images of ../shared/dev, ground truth in its gt/). Systems:
  - ours: `infer.OCR` with the shipped weights, one image per call (detect, crop, recognise);
  - ours, 8 images a call: `OCR.read_many`, the lines of 8 images recognised in shared
    batches, as the infer.py command line reads;
  - RapidOCR: `rapidocr_onnxruntime.RapidOCR()` with its bundled PP-OCRv4 models, defaults;
  - Tesseract: the `tesseract` command, `-l chi_sim`, TSV output grouped into lines.

Speed, seconds per image, all from image file to line texts:
  - warm: in one process, after a first pass over the set; the median of `--repeats`
    passes (pass time / images), the systems taking turns pass by pass. Our first pass in
    the process (it compiles, with the persistent cache off) is reported apart.
  - cold: a fresh process for the whole set, imports and model loading included:
    `python infer.py IMAGES --no-draw` (8 images a call) with an empty JAX compilation
    cache, then again with the cache that run filled; RapidOCR in a fresh Python process.
    Tesseract starts a process per image anyway, so its cold figure is its first pass.
Accuracy: each system's predictions of the last warm pass are written as
`<out>/<set>/<system>.json` in the format of ../shared/dev/ocr_eval.py and scored by it
(`ocr_eval.py e2e`): detection precision / recall / H-mean at IoU 0.5, end-to-end CER
(normalised and strict), exact lines, character-bag F.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEV_DIR = REPO.parent / "shared" / "dev"
SETS = {
    "examples": (REPO / "examples", REPO / "examples" / "gt"),
    "dev": (DEV_DIR / "images", DEV_DIR / "gt"),
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

#: images -> {image file name: [{"box": 8 numbers, "text", "score"}, ...]}
Predict = Callable[[list[Path]], dict[str, list[dict]]]


def one_by_one(read: Callable[[Path], list[dict]]) -> Predict:
    return lambda images: {p.name: read(p) for p in images}


# ----------------------------------------------------------------------------- the systems


def timed(fn: Callable, totals: dict[str, float], key: str) -> Callable:
    """`fn`, adding the seconds of each call to `totals[key]`."""

    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - t

    return wrapper


def ours(stages: dict[str, float]) -> tuple[Predict, Predict]:
    """Our OCR (persistent compilation cache off) reading one image per call, and reading 8
    images per call (`OCR.read_many`, their lines recognised in shared batches, as the
    infer.py command line does). The seconds spent in the detector network, the whole
    detector and the recogniser are added up in `stages`."""
    from infer import OCR

    ocr = OCR(compilation_cache=False)
    detector = ocr.detector
    detector.network_outputs = timed(detector.network_outputs, stages, "detector network")
    ocr.detector = timed(detector, stages, "detect")
    ocr.recognize = timed(ocr.recognize, stages, "recognise")

    def records(found: list[dict]) -> list[dict]:
        return [{"box": r["box"], "text": r["text"], "score": r["score"]} for r in found]

    def eight_per_call(images: list[Path]) -> dict[str, list[dict]]:
        out = {}
        for i in range(0, len(images), 8):
            chunk = images[i : i + 8]
            for path, found in zip(chunk, ocr.read_many(chunk), strict=True):
                out[path.name] = records(found)
        return out

    return one_by_one(lambda path: records(ocr(path))), eight_per_call


def rapidocr() -> Predict:
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()

    def read(path: Path) -> list[dict]:
        result, _ = engine(str(path))
        return [
            {
                "box": [round(float(v), 1) for pt in box for v in pt],
                "text": text,
                "score": float(score),
            }
            for box, text, score in (result or [])
        ]

    return one_by_one(read)


def tesseract_lines(tsv: str) -> list[dict]:
    """Tesseract TSV -> one record per text line (its box, words joined by spaces, mean
    word confidence)."""
    rows = [r.split("\t") for r in tsv.splitlines()]
    header, rows = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    lines: dict[tuple[str, str, str], dict] = {}
    for r in rows:
        if len(r) != len(header):
            continue
        key = (r[col["block_num"]], r[col["par_num"]], r[col["line_num"]])
        x, y, w, h = (int(r[col[k]]) for k in ("left", "top", "width", "height"))
        if r[col["level"]] == "4":
            lines[key] = {"box": [x, y, x + w, y, x + w, y + h, x, y + h], "words": [], "conf": []}
        elif r[col["level"]] == "5" and key in lines and r[col["text"]].strip():
            lines[key]["words"].append(r[col["text"]].strip())
            lines[key]["conf"].append(float(r[col["conf"]]) / 100)
    return [
        {"box": ln["box"], "text": " ".join(ln["words"]), "score": statistics.fmean(ln["conf"])}
        for ln in lines.values()
        if ln["words"]
    ]


def tesseract(lang: str) -> Predict:
    def read(path: Path) -> list[dict]:
        out = subprocess.run(
            ["tesseract", str(path), "stdout", "-l", lang, "tsv"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return tesseract_lines(out)

    return one_by_one(read)


def tesseract_version() -> str:
    out = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "?"


# ----------------------------------------------------------------------------- timing


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def per_image(seconds: float | None, n: int) -> str:
    return "-" if seconds is None else f"{seconds / n:.3f}"


def pass_seconds(predict: Predict, images: list[Path]) -> tuple[float, dict[str, list[dict]]]:
    t = time.perf_counter()
    preds = predict(images)
    return time.perf_counter() - t, preds


def fresh_process_seconds(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(
        cmd, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return time.perf_counter() - t


RAPIDOCR_SCRIPT = (
    "import sys\nfrom rapidocr_onnxruntime import RapidOCR\nengine = RapidOCR()\n"
    "for p in sys.argv[1:]:\n    engine(p)\n"
)


def cold_seconds(images: list[Path], work: Path) -> dict[str, tuple[float | None, float | None]]:
    """Fresh-process seconds for the whole set: ours with an empty and then the filled
    compilation cache; RapidOCR once (it compiles nothing)."""
    paths = [str(p) for p in images]
    env = {**os.environ, "CHINESE_OCR_JAX_CACHE": str(work / "jax-cache")}
    ours_cmd = [
        sys.executable,
        str(REPO / "infer.py"),
        *paths,
        "--out",
        str(work / "ours-cold"),
        "--no-draw",
        "--quiet",
    ]
    empty = fresh_process_seconds(ours_cmd, env)
    filled = fresh_process_seconds(ours_cmd, env)
    rapid = fresh_process_seconds([sys.executable, "-c", RAPIDOCR_SCRIPT, *paths])
    return {"ours, 8 images a call": (empty, filled), "RapidOCR": (rapid, None)}


# ----------------------------------------------------------------------------- accuracy


def score(preds: dict[str, list[dict]], gt: Path, work: Path, name: str, evaluator: Path) -> dict:
    pred_file, metrics_file = work / f"{name}.json", work / f"{name}.metrics.json"
    pred_file.write_text(json.dumps(preds, ensure_ascii=False, indent=0), encoding="utf-8")
    subprocess.run(
        [
            sys.executable,
            str(evaluator),
            "e2e",
            "--pred",
            str(pred_file),
            "--gt",
            str(gt),
            "--json",
            str(metrics_file),
            "--name",
            name,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return json.loads(metrics_file.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", nargs="+", choices=tuple(SETS), default=tuple(SETS))
    p.add_argument("--repeats", type=int, default=3, help="warm passes over each set")
    p.add_argument(
        "--out",
        type=Path,
        default=REPO / "ocr_results" / "bench_e2e",
        help="predictions and metrics are written here (default: %(default)s)",
    )
    p.add_argument("--evaluator", type=Path, default=DEV_DIR / "ocr_eval.py")
    p.add_argument("--tesseract-lang", default="chi_sim")
    p.add_argument("--no-cold", action="store_true", help="skip the fresh-process timings")
    args = p.parse_args()

    import jax
    import onnxruntime

    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs; jax {jax.__version__}, onnxruntime "
        f"{onnxruntime.__version__}, {tesseract_version()} (-l {args.tesseract_lang})"
    )
    speed_rows, acc_rows, stage_rows = [], [], []
    systems: dict[str, Predict] | None = None
    stages: dict[str, float] = {}
    for set_name in args.sets:
        folder, gt = SETS[set_name]
        images = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        work = args.out / set_name
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            cold = {} if args.no_cold else cold_seconds(images, Path(tmp))
        if systems is None:
            one, eight = ours(stages)
            systems = {
                "ours": one,
                "ours, 8 images a call": eight,
                "RapidOCR": rapidocr(),
                "Tesseract": tesseract(args.tesseract_lang),
            }
        progress(f"{set_name}: cold runs {cold}")
        first = {name: pass_seconds(predict, images)[0] for name, predict in systems.items()}
        progress(f"{set_name}: first passes {first}")
        cold["Tesseract"] = (first["Tesseract"], None)
        times: dict[str, list[float]] = {name: [] for name in systems}
        preds: dict[str, dict[str, list[dict]]] = {}
        ours_stages: dict[str, float] = {}
        for _ in range(args.repeats):
            for name, predict in systems.items():
                stages.clear()
                seconds, preds[name] = pass_seconds(predict, images)
                times[name].append(seconds)
                progress(f"{set_name}: {name} {seconds:.1f} s")
                if name == "ours":
                    for k, v in stages.items():
                        ours_stages[k] = ours_stages.get(k, 0.0) + v
        n = len(images)
        per = {k: v / (n * args.repeats) for k, v in ours_stages.items()}
        total = statistics.fmean(times["ours"]) / n
        stage_rows.append(
            f"| {set_name} ({n}) | {total:.3f} | {per['detect']:.3f} "
            f"| {per['detector network']:.3f} | {per['detect'] - per['detector network']:.3f} "
            f"| {per['recognise']:.3f} | {total - per['detect'] - per['recognise']:.3f} |"
        )
        rapid_warm = statistics.median(times["RapidOCR"]) / n
        for name in systems:
            warm = statistics.median(times[name]) / n
            fresh, cached = cold.get(name, (None, None))
            lines = sum(len(v) for v in preds[name].values()) / n
            speed_rows.append(
                f"| {set_name} ({n}) | {name} | {lines:.1f} | {warm:.3f} "
                f"| {min(times[name]) / n:.3f}-{max(times[name]) / n:.3f} "
                f"| {rapid_warm / warm:.2f}x | {first[name] / n:.3f} "
                f"| {per_image(fresh, n)} | {per_image(cached, n)} |"
            )
        for name in systems:
            r = score(preds[name], gt, work, name, args.evaluator)
            norm, strict = r["e2e_norm"], r["e2e_strict"]
            acc_rows.append(
                f"| {set_name} ({n}) | {name} | {r['n_gt']} | {r['det_precision']:.3f} "
                f"| {r['det_recall']:.3f} | {r['det_hmean']:.3f} | {norm['cer']:.3f} "
                f"| {strict['cer']:.3f} | {norm['exact_line_frac']:.3f} "
                f"| {norm['charbag_f']:.3f} |"
            )

    print(
        f"\nSeconds per image (warm: median of {args.repeats} passes; cold: a fresh process "
        f"for the whole set, divided by its images)\n"
    )
    print(
        "| images | system | lines found / image | warm s/image | min-max "
        "| warm speed vs RapidOCR | first pass in process s/image | cold s/image "
        "| cold, filled JAX cache s/image |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(speed_rows))
    print("\nOur warm seconds per image by stage, one image a call (means over the warm passes)\n")
    print(
        "| images | total | detect | of which network | of which post-processing "
        "| recognise | other (read, crop, order) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(stage_rows))
    print(f"\nAccuracy ({args.evaluator.name} e2e, IoU 0.5; predictions in {args.out})\n")
    print(
        "| images | system | gt lines | det P | det R | det H | CER | CER strict | exact lines "
        "| char-bag F |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(acc_rows))


if __name__ == "__main__":
    main()

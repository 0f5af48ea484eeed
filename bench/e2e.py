"""End-to-end OCR of whole images: ours (infer.py) vs RapidOCR and Tesseract, in one run.

    python bench/e2e.py [--sets examples dev real] [--every 4] [--repeats 3] [--out DIR]

Image sets: `examples` (the repository's rendered examples, ground truth in examples/gt),
`dev` (the real images of ../shared/dev) and `real` (../shared/real/images, every
`--every`-th image in name order; silver labels). Systems (those installed):
  - ours: `infer.OCR` with the shipped weights, one image per call (detect, crop, recognise);
  - ours, 8 images a call: `OCR.read_many`, the lines of 8 images recognised in shared
    batches, as the infer.py command line reads;
  - RapidOCR 3.10 (the peer): `rapidocr.RapidOCR()` with its bundled PP-OCRv6 small
    models, defaults (`pip install rapidocr onnxruntime`);
  - RapidOCR 1.4 (`rapidocr_onnxruntime`, PP-OCRv4 mobile) and Tesseract (`-l chi_sim`,
    TSV output grouped into lines), as extra rows where installed.

Speed, seconds per image, all from image file to line texts:
  - warm: in one process, after a first pass over the set; the median over images of the
    seconds per image, the systems taking turns image by image (the `--repeats` passes
    repeat that). Our first pass in the process (it compiles, with the persistent cache
    off) is reported apart.
  - cold: a fresh process reading one image (the set's first), imports and model loading
    included, the median of three: `python infer.py IMAGE --no-draw --quiet` with an
    empty JAX compilation cache, then with the cache that run filled; RapidOCR in a fresh
    Python process.
Accuracy: each system's predictions of the last warm pass are written as
`<out>/<set>/<system>.json` in the format of ../shared/dev/ocr_eval.py and scored by it
(`ocr_eval.py e2e`): detection precision / recall / H-mean at IoU 0.5, end-to-end CER
(normalised and strict), exact lines, character-bag F.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEV_DIR = REPO.parent / "shared" / "dev"
REAL_DIR = REPO.parent / "shared" / "real"
SETS = {
    "examples": (REPO / "examples", REPO / "examples" / "gt"),
    "dev": (DEV_DIR / "images", DEV_DIR / "gt"),
    "real": (REAL_DIR / "images", REAL_DIR / "gt"),
}
PEER = "RapidOCR 3.10"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

#: images -> {image file name: [{"box": 8 numbers, "text", "score"}, ...]}
Predict = Callable[[list[Path]], dict[str, list[dict]]]


def one_by_one(read: Callable[[Path], list[dict]]) -> Predict:
    return lambda images: {p.name: read(p) for p in images}


# ----------------------------------------------------------------------------- the systems


def ours() -> tuple[Predict, Predict]:
    """Our OCR (persistent compilation cache off) reading one image per call, and reading 8
    images per call (`OCR.read_many`, their lines recognised in shared batches, as the
    infer.py command line does). Stage by stage: bench/profile_e2e.py."""
    from infer import OCR

    ocr = OCR(compilation_cache=False)

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


def as_records(boxes, texts, scores) -> list[dict]:
    return [
        {"box": [round(float(v), 1) for pt in box for v in pt], "text": t, "score": float(sc)}
        for box, t, sc in zip(boxes, texts, scores, strict=True)
    ]


def rapidocr() -> Predict | None:
    """RapidOCR 3.x (`rapidocr`, PP-OCRv6 small bundled), or None when not installed."""
    try:
        from rapidocr import RapidOCR
    except ImportError:
        return None
    engine = RapidOCR()

    def read(path: Path) -> list[dict]:
        out = engine(str(path))
        if out.boxes is None:
            return []
        return as_records(out.boxes, out.txts, out.scores)

    return one_by_one(read)


def rapidocr_v1() -> Predict | None:
    """RapidOCR 1.4 (`rapidocr_onnxruntime`, PP-OCRv4 mobile), or None."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        return None
    engine = RapidOCR()

    def read(path: Path) -> list[dict]:
        result, _ = engine(str(path))
        result = result or []
        return as_records([r[0] for r in result], [r[1] for r in result], [r[2] for r in result])

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


def tesseract(lang: str) -> Predict | None:
    """The `tesseract` command, or None when it is not installed."""
    if shutil.which("tesseract") is None:
        return None

    def read(path: Path) -> list[dict]:
        out = subprocess.run(
            ["tesseract", str(path), "stdout", "-l", lang, "tsv"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return tesseract_lines(out)

    return one_by_one(read)


def versions() -> str:
    import jax

    out = [f"{platform.machine()}, {os.cpu_count()} CPUs; jax {jax.__version__}"]
    for module in ("rapidocr", "rapidocr_onnxruntime", "onnxruntime"):
        try:
            out.append(f"{module} {importlib.metadata.version(module)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    if shutil.which("tesseract"):
        text = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout
        out.append(text.splitlines()[0] if text else "tesseract ?")
    return ", ".join(out)


# ----------------------------------------------------------------------------- timing


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fresh_process_seconds(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(
        cmd, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return time.perf_counter() - t


RAPIDOCR_SCRIPT = "import sys\nfrom rapidocr import RapidOCR\nRapidOCR()(sys.argv[1])\n"


def cold_seconds(image: Path, work: Path, runs: int = 3) -> dict[str, float]:
    """Fresh-process seconds for one image (median of `runs`): ours with an empty and with
    a filled compilation cache, RapidOCR 3.10 (it compiles nothing)."""
    out: dict[str, list[float]] = {"empty cache": [], "filled cache": [], PEER: []}
    ours_cmd = [sys.executable, str(REPO / "infer.py"), str(image)]
    ours_cmd += ["--out", str(work / "ours-cold"), "--no-draw", "--quiet"]
    for k in range(runs):
        env = {**os.environ, "CHINESE_OCR_JAX_CACHE": str(work / f"jax-cache-{k}")}
        out["empty cache"].append(fresh_process_seconds(ours_cmd, env))
        out["filled cache"].append(fresh_process_seconds(ours_cmd, env))
        out[PEER].append(fresh_process_seconds([sys.executable, "-c", RAPIDOCR_SCRIPT, str(image)]))
    return {k: statistics.median(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- accuracy


def score(preds: dict[str, list[dict]], gt: Path, work: Path, name: str, evaluator: Path) -> dict:
    """`evaluator e2e` on the images of `preds` only (a subset of `gt` is linked into
    `work/gt` so that the images not read do not count as missed)."""
    stems = {Path(k).stem for k in preds}
    if any(f.stem not in stems for f in gt.glob("*.json")):
        subset = work / "gt"
        if subset.exists():
            shutil.rmtree(subset)
        subset.mkdir(parents=True)
        for stem in stems:
            (subset / f"{stem}.json").symlink_to((gt / f"{stem}.json").resolve())
        gt = subset
    safe = name.replace(" ", "_").replace(",", "")
    pred_file, metrics_file = work / f"{safe}.json", work / f"{safe}.metrics.json"
    pred_file.write_text(json.dumps(preds, ensure_ascii=False, indent=0), encoding="utf-8")
    cmd = [sys.executable, str(evaluator), "e2e", "--pred", str(pred_file), "--gt", str(gt)]
    subprocess.run(cmd + ["--json", str(metrics_file)], check=True, stdout=subprocess.DEVNULL)
    return json.loads(metrics_file.read_text(encoding="utf-8"))


ACCURACY_HEADER = (
    "| gt lines | det P | det R | det H | CER | CER strict | exact lines | char-bag F |"
)


def accuracy_cells(r: dict) -> str:
    """The `ACCURACY_HEADER` cells of one `score` result."""
    norm, strict = r["e2e_norm"], r["e2e_strict"]
    return (
        f"| {r['n_gt']} | {r['det_precision']:.3f} | {r['det_recall']:.3f} "
        f"| {r['det_hmean']:.3f} | {norm['cer']:.3f} | {strict['cer']:.3f} "
        f"| {norm['exact_line_frac']:.3f} | {norm['charbag_f']:.3f} |"
    )


# ----------------------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", nargs="+", choices=tuple(SETS), default=tuple(SETS))
    p.add_argument("--every", type=int, default=4, help="take every N-th image of 'real'")
    p.add_argument("--repeats", type=int, default=1, help="warm passes over each set")
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
    print(versions())

    one, eight = ours()
    candidates = {
        "ours": one,
        PEER: rapidocr(),
        "RapidOCR 1.4": rapidocr_v1(),
        "Tesseract": tesseract(args.tesseract_lang),
    }
    per_image_systems = {k: v for k, v in candidates.items() if v is not None}
    if PEER not in per_image_systems:
        raise SystemExit("the peer is not installed: pip install rapidocr onnxruntime")
    speed_rows, acc_rows, cold_rows = [], [], []
    for set_name in args.sets:
        folder, gt = SETS[set_name]
        images = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        images = images[:: args.every] if set_name == "real" else images
        work = args.out / set_name
        work.mkdir(parents=True, exist_ok=True)
        if not args.no_cold:
            with tempfile.TemporaryDirectory() as tmp:
                cold = cold_seconds(images[0], Path(tmp))
            progress(f"{set_name}: cold {cold}")
            cold_rows.append(
                f"| {set_name}: {images[0].name} | {cold['empty cache']:.2f} "
                f"| {cold['filled cache']:.2f} | {cold[PEER]:.2f} "
                f"| {cold['filled cache'] / cold[PEER]:.2f}x |"
            )
        first = {}
        for name, predict in per_image_systems.items():  # warm-up; ours compiles here
            t = time.perf_counter()
            predict(images)
            first[name] = (time.perf_counter() - t) / len(images)
        t = time.perf_counter()
        eight(images)
        first["ours, 8 images a call"] = (time.perf_counter() - t) / len(images)
        progress(f"{set_name}: first passes {first}")
        times: dict[str, list[float]] = {name: [] for name in per_image_systems}
        preds: dict[str, dict[str, list[dict]]] = {name: {} for name in per_image_systems}
        for _ in range(args.repeats):
            for i, path in enumerate(images):  # the systems take turns image by image
                for name, predict in per_image_systems.items():
                    t = time.perf_counter()
                    preds[name].update(predict([path]))
                    times[name].append(time.perf_counter() - t)
                print(f"\r{set_name} {i + 1}/{len(images)}", end="", file=sys.stderr)
            print(file=sys.stderr)
        t = time.perf_counter()
        preds["ours, 8 images a call"] = eight(images)
        eight_seconds = (time.perf_counter() - t) / len(images)
        n = len(images)
        peer = statistics.median(times[PEER])
        for name in per_image_systems:
            med = statistics.median(times[name])
            lines = sum(len(v) for v in preds[name].values()) / n
            speed_rows.append(
                f"| {set_name} ({n}) | {name} | {lines:.1f} | {med:.3f} "
                f"| {statistics.fmean(times[name]):.3f} | {med / peer:.2f}x "
                f"| {first[name]:.3f} |"
            )
        speed_rows.append(
            f"| {set_name} ({n}) | ours, 8 images a call | - | - | {eight_seconds:.3f} | - "
            f"| {first['ours, 8 images a call']:.3f} |"
        )
        for name in preds:
            r = score(preds[name], gt, work, name, args.evaluator)
            acc_rows.append(f"| {set_name} ({n}) | {name} {accuracy_cells(r)}")

    print(
        f"\nWarm seconds per image ({args.repeats} pass(es), the systems taking turns image by "
        "image; ratio: median against the peer's)\n"
    )
    print(
        "| images | system | lines found / image | median s/image | mean s/image "
        f"| median vs {PEER} | first pass in process s/image |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    print("\n".join(speed_rows))
    if cold_rows:
        print("\nA fresh process reading one image, seconds (median of 3)\n")
        print(
            "| image | ours, empty JAX cache | ours, filled cache "
            f"| {PEER} | ours filled / {PEER} |"
        )
        print("|---|---:|---:|---:|---:|")
        print("\n".join(cold_rows))
    print(f"\nAccuracy ({args.evaluator.name} e2e, IoU 0.5; predictions in {args.out})\n")
    print(f"| images | system {ACCURACY_HEADER}")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(acc_rows))


if __name__ == "__main__":
    main()

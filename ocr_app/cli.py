"""The command line of ``infer.py`` (and ``ocr``): read images, write their results.

    python infer.py photo.jpg scans/ list.txt --out results/      # files, folders, list files
    python infer.py --serve --port 8000                           # the web service (ocr_app.serve)
    python infer.py --help

For every input image it writes ``<name>.json`` (the line records), ``<name>.txt`` (the text in
reading order) and ``<name>.jpg`` (boxes and text drawn) to the output folder, each file
atomically (``ocr_common.outputs``). An image that fails gets one line on stderr naming it
and the reason; the others are read all the same.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from infer import DEFAULT_CROP_MARGIN, DEFAULT_MIN_TEXT_SCORE, MAX_CROP_MARGIN, OCR
from ocr_common.draw import DRAW_MAX_SIDE
from ocr_common.io import ImageError
from ocr_common.outputs import (
    Failure,
    InputError,
    collect_inputs,
    output_names,
    write_outputs,
)
from ocr_common.runtime import CACHE_ENV, DeviceError, select_device
from ocr_common.weights import WeightsError

DEFAULT_OUT_DIR = Path("ocr_results")


@dataclasses.dataclass
class Summary:
    """What a run did: counts, seconds per stage (sums over images) and the failures."""

    images: int = 0
    lines: int = 0
    seconds: dict[str, float] = dataclasses.field(
        default_factory=lambda: {"load": 0.0, "detect": 0.0, "recognise": 0.0, "write": 0.0}
    )
    total_seconds: float = 0.0
    failures: list[Failure] = dataclasses.field(default_factory=list)

    def add(self, load: float, detect: float, recognise: float, write: float, lines: int) -> None:
        """Counts one image that was written."""
        self.images += 1
        self.lines += lines
        for key, v in (
            ("load", load),
            ("detect", detect),
            ("recognise", recognise),
            ("write", write),
        ):
            self.seconds[key] += v

    def report(self, out_dir: Path) -> str:
        """A few lines for the terminal."""
        n = max(self.images, 1)
        per = ", ".join(f"{k} {v / n:.3f} s" for k, v in self.seconds.items())
        text = (
            f"{self.images} image(s) read, {self.lines} line(s), {len(self.failures)} "
            f"failed; results in {out_dir}/\n"
            f"time per image: {per} (total {self.total_seconds:.1f} s; the first image "
            f"includes compiling)"
        )
        if self.failures:
            text += "\nfailed:\n" + "\n".join(f"  {f}" for f in self.failures)
        return text


def run(
    inputs: Sequence[str | os.PathLike],
    ocr: OCR,
    out_dir: str | os.PathLike = DEFAULT_OUT_DIR,
    draw: bool = True,
    quiet: bool = False,
    images_per_batch: int = 8,
) -> Summary:
    """Reads every input image and writes its ``.json``, ``.txt`` and (``draw``) ``.jpg``.

    The images go through ``OCR.read_pages`` (the lines of up to ``images_per_batch``
    images are recognised together). An image that fails (unreadable, or an error while
    processing or writing it) gets one line on stderr naming it and the reason; the others
    are processed all the same.

    Raises:
      InputError: the inputs hold no image at all.
    """
    from tqdm import tqdm

    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    images, failures = collect_inputs(inputs, exclude=out_dir)
    if not images:
        raise InputError("; ".join(str(f) for f in failures) or "no input paths given")
    summary = Summary(failures=list(failures))
    for f in failures:
        print(f"error: {f}", file=sys.stderr)
    bar = tqdm(
        total=len(images),
        unit="img",
        desc="OCR",
        disable=quiet,
        file=sys.stderr,
        dynamic_ncols=True,
    )

    def fail(path: Path, e: BaseException) -> None:
        reason = str(e) if isinstance(e, ImageError) else f"{type(e).__name__}: {e}"
        summary.failures.append(Failure(str(path), reason))
        bar.write(f"error: {summary.failures[-1]}", file=sys.stderr)

    pages = ocr.read_pages(
        images, images_per_batch=images_per_batch, preview_side=DRAW_MAX_SIDE if draw else None
    )
    try:
        for page, name in zip(pages, output_names(images), strict=True):
            if page.error is not None:
                fail(page.source, page.error)
            else:
                t0 = time.perf_counter()
                doc = {
                    "image": str(page.source),
                    "width": page.width,
                    "height": page.height,
                    "lines": page.records,
                }
                try:
                    write_outputs(out_dir, name, doc, page.preview, page.preview_scale)
                except Exception as e:  # a write error fails this image only
                    fail(page.source, e)
                else:
                    summary.add(
                        page.seconds["load"],
                        page.seconds["detect"],
                        page.seconds["recognise"],
                        time.perf_counter() - t0,
                        len(page.records),
                    )
            bar.update(1)
    finally:  # also on Ctrl-C: leave the terminal tidy
        bar.close()
    summary.total_seconds = time.perf_counter() - t_start
    return summary


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Detect and read the text lines of images (Chinese OCR).",
        epilog=f"Writes <name>.json, <name>.txt and <name>.jpg per image. Environment: "
        f"{CACHE_ENV}=DIR|off sets the JAX compilation cache (default "
        f"~/.cache/chinese-ocr-jax/jax; the models' compiled programs are kept beside it, "
        f"in DIR-exported, so that a later run starts without compiling).",
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="image files, folders (searched recursively) or .txt files listing images, one a "
        "line (not with --serve)",
    )
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT_DIR, help="output folder (default: %(default)s)"
    )
    p.add_argument(
        "--weights-det",
        type=Path,
        default=None,
        help="exported CTPN weights (default: the detector shipped in the package)",
    )
    p.add_argument(
        "--weights-rec",
        type=Path,
        default=None,
        help="exported DenseNet weights (default: the recogniser shipped in the package)",
    )
    p.add_argument(
        "--mode",
        choices=("H", "O"),
        default="H",
        help="boxes: H = horizontal, O = oriented (default: %(default)s)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="most lines per recognition batch (default: 8 on a CPU, 32 on an accelerator)",
    )
    p.add_argument(
        "--min-text-score",
        type=float,
        default=DEFAULT_MIN_TEXT_SCORE,
        help="drop lines read as empty or with a lower mean character confidence, "
        "0..1; a negative value keeps every detected line "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--crop-margin",
        type=float,
        default=DEFAULT_CROP_MARGIN,
        help="crop each detected line this many line heights wider at both ends "
        "before reading it (default: %(default)s)",
    )
    p.add_argument(
        "--no-upside-down",
        dest="upside_down",
        action="store_false",
        help="do not read a page whose lines read poorly again turned half a turn "
        "(for pages photographed or scanned upside down)",
    )
    p.add_argument(
        "--reread-scales",
        metavar="F[,F...]",
        help="read dense lines (condensed Latin type) again stretched by these "
        "factors and keep the more confident reading; 'none' reads every line "
        "once (default: the recogniser's, 1.25,1.5)",
    )
    p.add_argument(
        "--trims",
        metavar="S[,S...]",
        help="read lines that read poorly again with these shares of their height cut off "
        "(SHARE for both edges, TOP:BOTTOM for each, negative to pad) and keep the most "
        "confident reading; 'default' takes the recogniser's views (pad 5%%, cut 10%%, cut "
        "10%% at the top: padded crops read 13%% better, this pipeline's tight boxes little, "
        "at 1.4x the time) (default: none)",
    )
    p.add_argument(
        "--device",
        choices=("cpu", "gpu"),
        help="JAX platform (default: a GPU if JAX has one, else the CPU)",
    )
    p.add_argument("--no-draw", action="store_true", help="do not write the annotated .jpg")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    web = p.add_argument_group("web service (ocr_app.serve)")
    web.add_argument(
        "--serve",
        action="store_true",
        help="run the OCR web service (POST /ocr, POST /ocr/batch, GET /health, the page at /) "
        "instead of reading PATHs",
    )
    web.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    web.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    web.add_argument(
        "--max-batch",
        type=int,
        default=8,
        help="most images of concurrent requests read together (default: %(default)s)",
    )
    web.add_argument(
        "--batch-wait-ms",
        type=float,
        default=5.0,
        help="how long to wait for more requests to batch with the first (default: %(default)s)",
    )
    web.add_argument(
        "--queue-size",
        type=int,
        default=64,
        help="most images waiting; more are refused with 503 (default: %(default)s)",
    )
    args = p.parse_args(argv)
    if not args.serve and not args.paths:
        p.error("give image PATHs to read, or --serve to run the web service")
    if args.serve and args.paths:
        p.error("--serve reads no PATHs: send images to the service instead")
    if args.max_batch < 1 or args.queue_size < 1 or args.batch_wait_ms < 0:
        p.error("--max-batch and --queue-size must be at least 1, --batch-wait-ms at least 0")
    if args.batch_size is not None and args.batch_size < 1:
        p.error("--batch-size must be at least 1")
    if not 0.0 <= args.crop_margin <= MAX_CROP_MARGIN:
        p.error(f"--crop-margin must be between 0 and {MAX_CROP_MARGIN:g} line heights")
    if args.reread_scales is not None:
        from densenet_jax.recognizer import parse_reread_scales  # light: no model is built

        try:
            args.reread_scales = parse_reread_scales(args.reread_scales)
        except ValueError as e:
            p.error(f"--reread-scales: {e}")
    if args.trims is not None:
        from densenet_jax.recognizer import parse_trims

        try:
            args.trims = parse_trims(args.trims)
        except ValueError as e:
            p.error(f"--trims: {e}")
    return args


def make_ocr(args: argparse.Namespace) -> OCR:
    """The ``OCR`` the arguments ask for."""
    return OCR(
        args.weights_det,
        args.weights_rec,
        mode=args.mode,
        batch_size=args.batch_size,
        min_text_score=None if args.min_text_score < 0 else args.min_text_score,
        crop_margin=args.crop_margin,
        upside_down=args.upside_down,
        recognizer_options={
            name: value
            for name, value in (("reread_scales", args.reread_scales), ("trims", args.trims))
            if value is not None
        }
        or None,
    )


def serve(args: argparse.Namespace) -> int:
    """``--serve``: the web service (``ocr_app.serve``) until SIGINT/SIGTERM."""
    from infer import require_weights
    from ocr_app.serve import ServeConfig
    from ocr_app.serve import serve as run_service

    try:  # say so at once, not from the worker thread once the server is up
        require_weights(args.weights_det, "det")
        require_weights(args.weights_rec, "rec")
        if args.device:
            select_device(args.device)
    except (WeightsError, DeviceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    config = ServeConfig(
        max_batch=args.max_batch,
        batch_wait_ms=args.batch_wait_ms,
        queue_size=args.queue_size,
        min_text_score=None if args.min_text_score < 0 else args.min_text_score,
        mode=args.mode,
    )
    return run_service(lambda: make_ocr(args), args.host, args.port, config)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line. Returns the exit status: 0 all images read, 1 some failed, 2 nothing
    could be done (no images, missing weights, no such device)."""
    args = parse_args(argv)
    if args.serve:
        return serve(args)
    t0 = time.perf_counter()
    images, failures = collect_inputs(args.paths, exclude=args.out)
    if not images:  # say so before loading any model
        print(f"error: {'; '.join(str(f) for f in failures)}", file=sys.stderr)
        return 2
    try:
        if args.device:
            select_device(args.device)
        ocr = make_ocr(args)
    except (WeightsError, DeviceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    load_s = time.perf_counter() - t0
    try:
        summary = run(args.paths, ocr, args.out, draw=not args.no_draw, quiet=args.quiet)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(summary.report(args.out) + f"\nmodel loading: {load_s:.1f} s", file=sys.stderr)
    return 1 if summary.failures else 0

"""This tree against an earlier commit, end to end: accuracy and warm speed in one run.

    python bench/compare_e2e.py --compare REV [--sets dev real] [--every 8]

Each tree runs `infer.OCR` (the same weights files: this tree's shipped ones unless
`--weights-det` / `--weights-rec`; persistent compilation cache off) in a worker process of
its own, `REV` checked out with `git worktree` (`bench/worktree.py`). The two take turns
image by image: each reads the image, and again when that compiled a new shape, and the
last reading is timed (warm, one image per call, file to records). Per set the table gives
both trees' median and mean seconds per image and their ratio; then `bench/paired_e2e.py`
scores the two readings image by image (end-to-end CER and detection H-mean, 95% paired
intervals). Predictions are kept in `--out/<set>/{REV,this}.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from e2e import IMAGE_SUFFIXES, SETS, progress, score  # noqa: E402
from worktree import checkout  # noqa: E402

# The worker: reads one image path per line from stdin, answers one JSON line per image.
WORKER = r"""
import json, sys, time
from infer import OCR
det, rec = sys.argv[1], sys.argv[2]
ocr = OCR(det, rec, compilation_cache=False)
predict = ocr.recognizer._predict_probs
def shapes():
    if hasattr(predict, "shapes_seen"):
        seen = predict.shapes_seen()
    else:  # older trees: a jitted function, or an ExportedJit around one
        seen = getattr(predict, "fn", predict)._cache_size()
    return len(ocr.detector._shapes), seen
print(json.dumps({"ready": True}), flush=True)
for path in sys.stdin:
    path = path.strip()
    for _ in range(3):  # again while a new shape was compiled (at most twice)
        before = shapes()
        t = time.perf_counter()
        records = ocr(path)
        seconds = time.perf_counter() - t
        if shapes() == before:
            break
    lines = [{"box": r["box"], "text": r["text"], "score": r["score"]} for r in records]
    print(json.dumps({"seconds": seconds, "lines": lines}, ensure_ascii=False), flush=True)
"""


class Worker:
    """One tree's `infer.OCR` in a process of its own."""

    def __init__(self, tree: Path, det: Path, rec: Path):
        env = {**os.environ, "PYTHONPATH": str(tree)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(det), str(rec)],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._answer()

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited with status {self.proc.wait()}")
        return json.loads(line)

    def read(self, image: Path) -> dict:
        self.proc.stdin.write(f"{image}\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--compare", required=True, help="the earlier commit (any git revision)")
    p.add_argument("--sets", nargs="+", choices=tuple(SETS), default=["dev", "real"])
    p.add_argument("--every", type=int, default=8, help="take every N-th image of 'real'")
    p.add_argument("--weights-det", type=Path, default=REPO / "ctpn_jax/assets/ctpn.npz")
    p.add_argument("--weights-rec", type=Path, default=REPO / "densenet_jax/assets/densenet.npz")
    p.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "compare_e2e")
    args = p.parse_args()
    evaluator = REPO.parent / "shared" / "dev" / "ocr_eval.py"

    with tempfile.TemporaryDirectory() as tmp, checkout(args.compare, Path(tmp)) as (rev, old):
        names = (rev, "this")
        workers = dict(zip(names, (old, REPO), strict=True))
        workers = {n: Worker(t, args.weights_det, args.weights_rec) for n, t in workers.items()}
        rows, pairs = [], []
        for set_name in args.sets:
            folder, gt = SETS[set_name]
            images = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            images = images[:: args.every] if set_name == "real" else images
            seconds = {n: [] for n in names}
            preds = {n: {} for n in names}
            for i, image in enumerate(images):
                for n in names if i % 2 else names[::-1]:  # who goes first alternates
                    answer = workers[n].read(image)
                    seconds[n].append(answer["seconds"])
                    preds[n][image.name] = answer["lines"]
                progress(f"{set_name} {i + 1}/{len(images)}")
            work = args.out / set_name
            work.mkdir(parents=True, exist_ok=True)
            for n in names:
                score(preds[n], gt, work, n, evaluator)  # writes work/<n>.json
            base = statistics.median(seconds[rev])
            for n in names:
                med, mean = statistics.median(seconds[n]), statistics.mean(seconds[n])
                rows.append(
                    f"| {set_name} ({len(images)}) | {n} | {med:.3f} | {mean:.3f} "
                    f"| {med / base:.2f} |"
                )
            subset = work / "gt" if (work / "gt").is_dir() else gt
            pairs.append((subset, work / f"{rev}.json", work / "this.json"))
        for w in workers.values():
            w.close()
    print("\n| images | code | median s/image | mean s/image | median vs the earlier |")
    print("|---|---|---:|---:|---:|")
    print("\n".join(rows))
    for subset, a, b in pairs:
        cmd = [sys.executable, str(REPO / "bench" / "paired_e2e.py"), "--gt", str(subset)]
        subprocess.run(cmd + [str(a), str(b)], check=True)


if __name__ == "__main__":
    main()

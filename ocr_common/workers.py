"""Data worker processes for training: grain's multiprocessing prefetch, with workers that
end when the trainer does.

grain starts its workers as child processes; if the trainer is killed outright (``kill -9``,
the out-of-memory killer, a lost session) they would keep running as orphans, each holding
its renderer's memory (about 700 MB) until someone finds them. Each worker therefore runs a
watchdog thread that exits the process as soon as its parent is gone.
"""

from __future__ import annotations

import os
import threading
import time

#: Seconds between the watchdog's looks at the parent process.
WATCH_INTERVAL = 0.5


def exit_with_parent(worker_index: int = 0, worker_count: int = 1) -> None:
    """Starts a daemon thread that ends this process when its parent process ends.

    Called in each grain worker as its ``worker_init_fn`` (hence the two arguments, unused).
    An orphan is adopted by another process (init or a subreaper), so a changed parent id
    means the trainer is gone.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_INTERVAL)
        os._exit(1)  # no cleanup: the parent that would read our results is gone

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def prefetch_in_workers(dataset, num_workers: int, buffer_size: int):
    """``dataset.mp_prefetch`` over ``num_workers`` processes that exit with the trainer.

    Args:
      dataset: a ``grain.IterDataset``.
      num_workers: worker processes (at least 1).
      buffer_size: elements each worker prepares ahead.

    Returns:
      The prefetching ``grain.IterDataset``.
    """
    import grain
    from absl import flags

    if not flags.FLAGS.is_parsed():  # grain's workers read absl flags; we are no absl app
        flags.FLAGS.mark_as_parsed()
    options = grain.MultiprocessingOptions(
        num_workers=num_workers, per_worker_buffer_size=buffer_size
    )
    return dataset.mp_prefetch(options, worker_init_fn=exit_with_parent)

"""A batch run, end to end: enumerate the inputs, subtract what the shards already hold,
stream the rest through a pool of Ray actors (Ray Data: ``map_batches`` over an actor pool,
its backpressure and retries), count as results come back, and say what was done.

Images go in Ray Data batches of ``shard_size`` (one block each, so a batch is a task and a
shard); each video is a task of its own, so that tracking runs over the whole video. The
driver holds only the paths and a few numbers per input: pixels and poses stay in the
workers and the shards.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pafpose.batch.cluster import Resources, check_address, ray_session, worker_error
from pafpose.batch.inputs import Item, enumerate_inputs
from pafpose.batch.ledger import changed_options, clean_temporaries, drop_rows, exclusive, older_layout, scan
from pafpose.batch.results import FORMATS, Place, child, place, remove, write_bytes
from pafpose.batch.worker import WorkerSettings, worker_class
from pafpose.checks import check_number
from pafpose.errors import PafposeError

if TYPE_CHECKING:
    from pafpose.outputs import OutputOptions
    from pafpose.video import FrameRange

#: Images per shard unless told: the shards of a million images are 16,000 files, and a crash
#: costs a worker at most 64 images.
DEFAULT_SHARD = 64


@dataclass(frozen=True)
class BatchOptions:
    """How a batch run works and what it writes (the estimator's options are separate:
    :class:`~pafpose.estimator_config.EstimatorConfig`)."""

    out: Path | str  #: a folder, or an object-store URL (``s3://bucket/poses``)
    format: str = "parquet"  #: result shards: "parquet" or "jsonl"
    #: the per-file outputs, as pafpose predict writes them (default: none, the shards only)
    outputs: OutputOptions | None = None
    frames: FrameRange | None = None  #: the frames of each video run on (OpenPose's --frame_first/step/last)
    timeout: float = 10.0  #: seconds to wait for a URL
    batch_size: int = 1  #: images or frames per network call
    shard_size: int | None = None  #: images per Ray Data batch and per shard (the most work a crash can cost a
    #: worker); default: up to 64, fewer where that gives each worker at least 4 batches
    track: bool = True  #: track people through each video
    online: bool = False  #: track video files as live streams (no look-ahead), not offline as predict does
    #: Ray actors, each with its own Estimator; 0: in this process, without Ray; None: in this process
    #: for a local run (no ``address``, no ``$RAY_ADDRESS``, no other Ray option), else 1 actor
    workers: int | None = None
    max_workers: int | None = None  #: more: the pool grows to this many while work waits (None: fixed size)
    cpus_per_worker: float | None = None  #: Ray CPUs each actor reserves (default: the CPUs shared out)
    gpus_per_worker: float = 0.0  #: GPUs each actor reserves (e.g. 1, or 0.5 for two per GPU)
    address: str | None = None  #: a Ray cluster to join (else $RAY_ADDRESS, else a local instance)
    path_column: str = "path"  #: the column of paths or URLs in Parquet/CSV manifests
    verbose: bool = False  #: Ray's own logs and progress bars
    retry_errors: bool = False  #: do the inputs whose results are error rows again (their rows dropped first)
    log_every: float = 30.0  #: seconds between progress lines when stderr is no terminal (a log)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise PafposeError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        from pafpose.outputs import OutputOptions
        from pafpose.video import FrameRange

        object.__setattr__(self, "out", place(self.out))
        if isinstance(self.out, str) and self.outputs is not None:
            if self.outputs.json == "coco":
                raise PafposeError(f"--json coco: its one file for the run is merged in a local or mounted --out; "
                                   f"with --out {self.out} in object storage, use --json openpose or the shards")
        if self.outputs is None:  # (no file per image is written: the folder is never made)
            object.__setattr__(self, "outputs", OutputOptions(out=Path(str(self.out)), json="none"))
        if self.frames is None:
            object.__setattr__(self, "frames", FrameRange())
        assert self.outputs is not None
        if self.outputs.write_video is not None:
            raise PafposeError("--write-video joins every drawn image and frame of a run into one video, in order: "
                               "pafpose batch works in parallel; use pafpose predict, or --save-video for each video")
        check_number("timeout", self.timeout, 0.1, 3600)
        check_number("batch_size", self.batch_size, 1, 256, integer=True)
        if self.shard_size is not None:
            check_number("shard_size", self.shard_size, 1, 100_000, integer=True)
        if self.workers is not None:
            check_number("workers", self.workers, 0, 10_000, integer=True)
        if self.workers == 0:  # in this process: nothing of Ray's applies
            ray_only = [flag for flag, on in (("--address", self.address is not None),
                                              ("--max-workers", self.max_workers is not None),
                                              ("--cpus-per-worker", self.cpus_per_worker is not None),
                                              ("--gpus-per-worker", bool(self.gpus_per_worker))) if on]
            if ray_only:
                raise PafposeError(f"{ray_only[0]} is for Ray's workers; --workers 0 runs in this process, without Ray")
        check_number("log_every", self.log_every, 0.1, 86400)
        if self.max_workers is not None:
            check_number("max_workers", self.max_workers, 1, 10_000, integer=True)
            if self.max_workers < self.actors:
                raise PafposeError(f"--max-workers {self.max_workers} is below --workers {self.actors}")
        if self.cpus_per_worker is not None:
            check_number("cpus_per_worker", self.cpus_per_worker, 0.01, 1024)
        check_number("gpus_per_worker", self.gpus_per_worker, 0, 64)


    @property
    def in_process(self) -> bool:
        """Whether the run works in this process, without Ray: ``workers`` 0, or not given for
        a local run (nothing asks for Ray: no ``address``, no ``$RAY_ADDRESS``, no pool or
        per-worker resources), where Ray would add its start-up and open ports for nothing."""
        if self.workers is not None:
            return self.workers == 0
        import os

        return (self.address is None and not os.environ.get("RAY_ADDRESS") and self.max_workers is None
                and self.cpus_per_worker is None and not self.gpus_per_worker)

    @property
    def actors(self) -> int:
        """Ray actors to start with (0: in this process)."""
        return 0 if self.in_process else (self.workers or 1)


@dataclass
class WorkerStats:
    inputs: int = 0
    rows: int = 0
    seconds: float = 0.0  #: busy, of which:
    read: float = 0.0  #: reading and decoding files
    infer: float = 0.0  #: the Estimator
    write: float = 0.0  #: writing results and per-file outputs
    first: float = 0.0  #: when it began its first unit of work (Unix time)
    last: float = 0.0  #: when it finished its last

    @property
    def span(self) -> float:
        """Seconds from its first unit's start to its last unit's end: busy, or waiting for work."""
        return self.last - self.first


@dataclass
class Summary:
    """What a run did (``summary.json`` under ``--out`` holds the same)."""

    inputs: int = 0  #: inputs the sources name
    done_before: int = 0  #: of them, already in the shards when the run started
    processed: int = 0  #: inputs finished by this run (as the workers reported back)
    results: int = 0  #: inputs in the shards when the run ended (after an interruption: read again from them)
    images: int = 0
    videos: int = 0
    frames: int = 0
    people: int = 0
    errors: int = 0  #: inputs of this run with an error row
    errors_total: int = 0  #: of the inputs, those with an error row in the shards (this run's included)
    source_errors: list[str] = field(default_factory=list)  #: sources that named nothing
    ignored: int = 0  #: files in folders that are neither images nor videos
    startup: float = 0.0  #: seconds to start or join Ray
    seconds: float = 0.0  #: seconds from the pool's start to the last result
    began: float = 0.0  #: when the pool was started (Unix time)
    pool: int = 0  #: actors working at once
    workers: dict[str, WorkerStats] = field(default_factory=dict)  #: per actor (host:pid), restarted ones apart
    interrupted: bool = False

    @property
    def remaining(self) -> int:
        return self.inputs - self.results

    @property
    def steady(self) -> float:
        """Images and frames per second from the first worker's first task to the last result:
        the pool's pace once started (Ray's and the model's start-up apart)."""
        if not self.workers:
            return 0.0
        span = max(w.last for w in self.workers.values()) - min(w.first for w in self.workers.values())
        return (self.images + self.frames) / span if span > 0 else 0.0

    def line(self) -> str:
        """One line: what was done, at what speed."""
        if not self.interrupted and self.inputs and self.done_before == self.inputs:
            return f"nothing to do: all {self.inputs} inputs were done before"
        head = "interrupted after " if self.interrupted else ""
        what = [f"{self.images} image{'s' * (self.images != 1)}"]
        if self.videos:
            what.append(f"{self.videos} video{'s' * (self.videos != 1)} ({self.frames} frames)")
        rows = self.images + self.frames
        rate = ""
        if rows and self.seconds > 0:
            n = max(1, self.pool)
            rate = (f"; {rows / self.seconds:.1f} images/s, {self.steady:.1f}/s once the workers ran, "
                    f"{self.steady / n:.1f}/s per worker ({n} worker{'s' * (n != 1)})")
        before = f", {self.done_before} done before" if self.done_before else ""
        left = f", {self.remaining} left" if self.remaining and self.interrupted else ""
        return (f"{head}{' and '.join(what)}: {self.people} people found, {self.errors} failed{before}{left}{rate}, "
                f"after {self.startup:.1f} s start-up")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["workers"] = {k: asdict(v) for k, v in self.workers.items()}
        d["remaining"] = self.remaining
        d["steady"] = self.steady
        return d


def _plan(options: BatchOptions, res: Resources, tasks: int) -> tuple[int, int, float, int]:
    """``(actors at least, actors at most, CPUs each reserves, threads each runs)`` for this
    cluster (the pool grows from the first to the second while work waits: ``--max-workers``).

    Unless told, actors share out the CPUs of the nodes they will land on, each node less a
    quarter CPU for Ray Data's own tasks (an actor pool that reserves every CPU leaves none
    for them, and the run stalls, backpressured, before it starts), and each runs that many
    threads. On a cluster whose worker nodes the autoscaler has yet to start, 1 CPU each.
    With GPUs, 1 CPU each (the GPU computes; a CPU decodes and draws). The CPUs are shared out
    for the largest pool.
    """
    actors = max(1, min(options.actors, tasks))
    most = max(actors, min(options.max_workers or options.actors, tasks))
    cpus = options.cpus_per_worker
    if cpus is None:
        if options.gpus_per_worker:
            cpus = min(1.0, res.smallest_cpus or 1.0)
        elif res.cpu_nodes == 0:
            cpus = 1.0
        else:
            per_node = math.ceil(most / res.cpu_nodes)
            cpus = max(0.1, (res.smallest_cpus - 0.25) / per_node)
    if res.local:  # nothing can join a local instance: what doesn't fit never starts
        if cpus > res.node_cpus:
            raise PafposeError(f"--cpus-per-worker {cpus:g}: this machine has {res.node_cpus:g} CPUs")
        if options.gpus_per_worker > res.node_gpus:
            raise PafposeError(f"--gpus-per-worker {options.gpus_per_worker:g}: this machine has "
                               f"{res.node_gpus:g} GPUs")
    threads = max(1, round(cpus))
    return actors, most, round(cpus, 3), threads


def _blocks(items: Sequence[Item], size: int) -> list[Any]:
    import pyarrow as pa

    blocks = []
    for i in range(0, len(items), size):
        chunk = items[i : i + size]
        blocks.append(pa.table({"key": [x.key for x in chunk], "source": [x.source for x in chunk],
                                "kind": [x.kind for x in chunk], "name": [x.name for x in chunk]}))
    return blocks


def _check_model(config: Any) -> None:
    """A model name or weights file that can't be right fails here, in a second, rather than
    in every worker after Ray has started (the workers still check what needs their device)."""
    from pafpose.weights import architecture_of

    if config.weights is not None and not Path(config.weights).is_file():
        raise PafposeError(f"{config.weights}: no such weights file")
    if config.model is not None:
        architecture_of(config.model)


def _model_name(config: Any) -> str:
    from pafpose.estimator_config import DEFAULT_MODEL

    if config.model:
        return str(config.model)
    return Path(config.weights).name if config.weights else DEFAULT_MODEL


def run(sources: Sequence[str], config: Any, options: BatchOptions, *, progress: bool = True,
        warn: Callable[[str], None] | None = None) -> Summary:
    """Run (or resume) a batch job: every input of ``sources`` not yet in ``options.out``'s
    shards goes through ``config``'s Estimator on Ray; returns the :class:`Summary` (also
    written to ``OUT/summary.json``). Ctrl-C stops it cleanly (``interrupted``), keeping
    every finished shard. Raises :class:`PafposeError` for a bad source list, an output
    folder that can't be written, a Ray cluster that can't be joined or a worker that fails
    (not for a bad input file: that is an error row).
    """
    from pafpose.io import check_output_dir

    say = warn or (lambda message: None)
    _check_model(config)
    if not options.in_process:
        check_address(options.address)
    out: Place = options.out
    if isinstance(out, str):
        from pafpose.storage import kind

        if kind(out) == "file":  # reachable, with credentials: the lock's writing checks the rest
            raise PafposeError(f"--out {out}: is an object, not a prefix")
    else:
        out = check_output_dir(out, "--out").resolve()
        (out / "results").mkdir(exist_ok=True)
    summary = Summary()
    with exclusive(out):
        inputs = enumerate_inputs(list(sources), out, options.path_column)
        for message in inputs.errors:
            say(f"error: {message}")
        items = _selected(inputs.items, options)
        summary.source_errors, summary.ignored, summary.inputs = inputs.errors, inputs.ignored, len(items)
        if not items:
            raise PafposeError("nothing to process: no readable source among " + " ".join(sources))
        clean_temporaries(out)
        if older_layout(out):
            raise PafposeError(f"--out {out}: holds results of an older pafpose, whose people are {{id, flat "
                               "keypoints}}; adding today's {track_id, keypoints, parts} would make the folder "
                               "unreadable as one table: use another --out")
        done = scan(out, say)
        if options.retry_errors:
            retried = drop_rows(out, {i.key for i in items} & done.error_keys)
            if retried:
                say(f"--retry-errors: {retried} input{'s' * (retried != 1)} with error rows done again")
                done = scan(out, say)
        changed = changed_options(out, _model_name(config), json.loads(json.dumps(config.to_dict())))
        if changed:
            say(f"{out} holds results made with other {', '.join(changed)}: they are kept and only the inputs "
                "missing from them are done now (another --out does them all again)")
        todo = [i for i in items if i.key not in done.keys]
        summary.done_before = summary.inputs - len(todo)
        summary.errors_total = sum(i.key in done.error_keys for i in items)
        summary.results = summary.done_before
        if todo:
            try:
                _process(todo, config, options, out, summary, progress)
                summary.results += summary.processed
            except KeyboardInterrupt:
                summary.interrupted = True
                # shards finished as it stopped never reached the counts: the shards say what is done
                now = scan(out)
                summary.results = sum(i.key in now.keys for i in items)
                summary.errors_total = sum(i.key in now.error_keys for i in items)
        if options.outputs.json == "coco":
            if summary.results == summary.inputs:
                from pafpose.batch.coco import write_coco

                write_coco(out, options.outputs.json_folder, items, say)
            else:
                say(f"--json coco: coco_results.json is written once every input is done ({summary.remaining} "
                    "left): run the command again")
        write_bytes(child(out, "summary.json"), (json.dumps(summary.to_dict(), indent=1) + "\n").encode())
    return summary


def _selected(items: list[Item], options: BatchOptions) -> list[Item]:
    """The inputs run on: each folder's images as its frames under OpenPose's --frame-first/-step/-last
    (as pafpose predict selects them); PoseTrack files need sequences, which batch makes of videos only."""
    from pafpose.loops import select_images

    assert options.frames is not None and options.outputs is not None
    images = select_images([i for i in items if i.kind == "image"], lambda i: i.key, options.frames)
    if images and options.outputs.json == "posetrack":
        raise PafposeError("--json posetrack: pafpose batch writes PoseTrack files for videos; a folder of frames "
                           "as one tracked sequence is pafpose predict --track's (images are among the inputs)")
    chosen = {i.key for i in images}
    return [i for i in items if i.kind == "video" or i.key in chosen]


def _process(todo: list[Item], config: Any, options: BatchOptions, out: Place, summary: Summary,
             progress: bool) -> None:
    import shutil
    import tempfile

    from tqdm import tqdm

    videos = [i for i in todo if i.kind == "video"]
    images = [i for i in todo if i.kind == "image"]
    # one block per task: each video alone (the longest tasks first), images shard_size at a time
    shard = options.shard_size or max(1, min(DEFAULT_SHARD, math.ceil(len(images) / (4 * max(1, options.actors)))))
    blocks = _blocks(videos, 1) + _blocks(images, shard)
    here = options.in_process
    t0 = time.perf_counter()
    with contextlib.nullcontext(None) if here else ray_session(options.address, options.verbose) as res:
        summary.startup = time.perf_counter() - t0
        if res is None:  # this process: its threads as predict's (all the CPUs unless told)
            actors, most, cpus, threads = 0, 0, 0.0, config.threads or 0
        else:
            actors, most, cpus, threads = _plan(options, res, len(blocks))
        summary.pool = most
        marker = f".run-{uuid.uuid4().hex}"
        write_bytes(child(out, "results", marker), b"")
        # where the workers say how far their videos are: under results, or a local folder when that is in
        # object storage (no object per second; workers on other machines then show no frames until done)
        where = Path(tempfile.mkdtemp(prefix="pafpose-progress-")) if isinstance(out, str) else out / "results"
        # "auto" means the device Ray gives the actor: a GPU it reserved, else the CPU (not a GPU it didn't reserve)
        device = config.device if config.device != "auto" or here else ("cuda" if options.gpus_per_worker else "cpu")
        settings = WorkerSettings(
            config=config.replace(threads=config.threads or threads or None, device=device).to_dict(), out=str(out),
            format=options.format, outputs=options.outputs.absolute().to_dict(),
            frames=(options.frames.first, options.frames.step, options.frames.last),
            timeout=options.timeout, batch_size=options.batch_size, track=options.track, online=options.online,
            model=_model_name(config), marker=marker, progress=str(where))
        start = time.perf_counter()
        summary.began = time.time()
        unit = "input" if videos else "image"
        if progress and len(todo) >= 2 and not sys.stderr.isatty():  # a log (nohup, CI, a scheduler): lines
            bar: Any = LogProgress(len(todo), unit, options.log_every, summary, where)
        else:
            bar = tqdm(total=len(todo), unit=unit, disable=not progress or len(todo) < 2, dynamic_ncols=True)
        shown = _Postfix(bar, summary, where if videos and isinstance(bar, tqdm) and not bar.disable else None)
        try:
            with bar, shown:
                if here:
                    _in_process(blocks, settings, summary, bar, shown)
                else:
                    _pool(blocks, settings, (actors, most), cpus, options.gpus_per_worker, summary, bar, shown)
        finally:
            summary.seconds = time.perf_counter() - start
            with contextlib.suppress(PafposeError, OSError):  # left behind, a later run cleans it
                remove(child(out, "results", marker))
            if isinstance(out, str):
                shutil.rmtree(where, ignore_errors=True)


class _Postfix:
    """The counts beside the terminal's bar: people, failures, video frames. The bar counts
    whole inputs and a video is one, so while videos run (``where``: the workers' progress
    files) a timer adds, once a second, the frames done so far of those in hand."""

    def __init__(self, bar: Any, summary: Summary, where: Path | None, every: float = 1.0) -> None:
        self.bar, self.summary, self.where, self.every = bar, summary, where, every
        self.going = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pafpose-frames", daemon=True)

    def __enter__(self) -> _Postfix:
        if self.where is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def __call__(self, refresh: bool = False) -> None:
        s = self.summary
        frames = s.frames + self.going
        self.bar.set_postfix_str(f"{s.people} people, {s.errors} failed" + (f", {frames} frames" if frames else "")
                                 + (f" ({self.going} in videos under way)" if self.going else ""), refresh=refresh)

    def _run(self) -> None:
        from pafpose.batch.worker import videos_in_progress

        assert self.where is not None
        while not self._stop.wait(self.every):
            going = videos_in_progress(self.where)
            if going != self.going:
                self.going = going
                with contextlib.suppress(Exception):  # the bar closing meanwhile
                    self(refresh=True)


class LogProgress:
    """Progress for a log rather than a terminal (output redirected: nohup, CI, a scheduler):
    a line on stderr every ``every`` seconds, from a timer, so a long task (a video) still
    shows the run is alive; and one at the end. Same calls as the tqdm bar it replaces."""

    def __init__(self, total: int, unit: str, every: float, summary: Summary, results: Path | None = None) -> None:
        self.total, self.unit, self.every, self.summary, self.results = total, unit, every, summary, results
        self.n = 0
        self.start = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="pafpose-progress", daemon=True)

    def __enter__(self) -> LogProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.line()

    def update(self, n: int) -> None:
        self.n += n

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        """The counts are the summary's, read at each line."""

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            self.line()

    def line(self) -> None:
        s = self.summary
        took = time.monotonic() - self.start
        rate = self.n / took if took > 0 else 0.0
        eta = f", about {_duration((self.total - self.n) / rate)} left" if rate > 0 and self.n < self.total else ""
        frames = f", {s.frames} video frames" if s.frames else ""
        if self.results is not None and self.n < self.total:  # videos in hand advance per frame
            from pafpose.batch.worker import videos_in_progress

            going = videos_in_progress(self.results)
            frames += f" (+{going} in videos under way)" if going else ""
        print(f"pafpose batch: {self.n}/{self.total} {self.unit}s ({100 * self.n / max(self.total, 1):.0f} %) "
              f"after {_duration(took)}, {rate:.2f}/s{eta}; {s.people} people{frames}, {s.errors} failed",
              file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _pool(blocks: list[Any], settings: WorkerSettings, actors: tuple[int, int], cpus: float, gpus: float,
          summary: Summary, bar: Any, postfix: Callable[[], None]) -> None:
    """``blocks`` through a pool of actors, one block per task (``batch_size=None``: a block
    is a batch); counts the results as they come.

    One task in flight per actor: Ray Data would otherwise queue a few tasks on each actor,
    so that work waits behind a long video while another actor idles, and the tasks queued on
    an actor whose node is lost wait for its replacement. A task is a block of paths, so
    sending the next one only when an actor is free costs nothing measurable."""
    import ray
    import ray.data

    ds = ray.data.from_arrow(blocks)
    results = ds.map_batches(worker_class(settings), batch_size=None, batch_format="pyarrow",
                             compute=ray.data.ActorPoolStrategy(min_size=actors[0], max_size=actors[1],
                                                                max_tasks_in_flight_per_actor=1),
                             num_cpus=cpus, num_gpus=gpus or None)
    try:
        for batch in results.iter_batches(batch_format="pyarrow", batch_size=None, prefetch_batches=0):
            for r in batch.to_pylist():
                _count(summary, r)
            bar.update(batch.num_rows)
            postfix()
    except KeyboardInterrupt:
        raise
    except (ray.exceptions.RayError, RuntimeError) as err:  # a worker's failure, not an input's: stop, say why
        raise PafposeError(f"a worker failed: {worker_error(err)}") from None


def _in_process(blocks: list[Any], settings: WorkerSettings, summary: Summary, bar: Any,
                postfix: Callable[[], None]) -> None:
    """``--workers 0``: the same worker, shards and ledger in this process, one block after
    another, without Ray's start-up (a few seconds and CPU-seconds: what a small run on one
    machine would mostly spend). A crash of this process is a crash of the run; the shards
    written stand, as after a kill."""
    worker = worker_class(settings)()
    for block in blocks:
        result = worker(block)
        for r in result.to_pylist():
            _count(summary, r)
        bar.update(result.num_rows)
        postfix()


def _count(summary: Summary, r: dict[str, Any]) -> None:
    summary.processed += 1
    if r["kind"] == "video":
        summary.videos += 1
        summary.frames += r["frames"]
    else:
        summary.images += 1
    summary.people += r["people"]
    if r["error"] is not None:
        summary.errors += 1
        summary.errors_total += 1
    w = summary.workers.setdefault(r["worker"], WorkerStats())
    w.inputs += 1
    w.rows += r["rows"]
    w.seconds += r["seconds"]
    w.read += r["read"]
    w.infer += r["infer"]
    w.write += r["write"]
    w.first = min(w.first or r["started"], r["started"])
    w.last = max(w.last, r["ended"])


def summary_text(summary: Summary) -> list[str]:
    """The lines a command prints after a run: the summary line, then per worker."""
    lines = [summary.line()]
    if summary.workers and summary.seconds > 0:
        for name, w in sorted(summary.workers.items()):
            busy = min(100.0, 100 * w.seconds / w.span) if w.span > 0 else 100.0
            lines.append(f"  worker {name}: {w.inputs} inputs, {w.rows} rows, {w.rows / summary.seconds:.1f} rows/s; "
                         f"busy {busy:.0f}% from its first task to its last (read {w.read:.1f} s, model "
                         f"{w.infer:.1f} s, write {w.write:.1f} s), started after {w.first - summary.began:.1f} s")
    return lines


__all__ = ["BatchOptions", "Summary", "run", "summary_text"]

"""pafpose batch SOURCE... --out DIR: poses for a whole data set, on this machine or a Ray cluster, resumable.

SOURCE is a folder (searched recursively), a glob, an image or video file or URL, a list
file (.txt, .lst, .list: one path or URL per line; relative paths are relative to the list)
or a manifest (.csv, .parquet) whose --path-column holds paths or URLs; s3:// and gs:// too.
The work goes in units: images in batches of --shard-size, each video as one (people tracked
through it). A local run works in this process; --workers N runs on Ray Data in a pool of N
actors, each loading the model once, on a local Ray instance started and stopped on this
machine, or on the cluster of --address (or $RAY_ADDRESS).

Under --out (a folder, or an object-store prefix: s3://bucket/poses), results/part-*.parquet
(or .jsonl) hold one row per image or video frame: key, source, kind, frame, width, height,
people (track_id, score, keypoints: [x, y, score] per keypoint, parts), skeleton, model,
options, error and what ran; pafpose.batch.read_results(DIR) reads them back as one table.
The output options are pafpose predict's (--json openpose|coco|posetrack, --save-images,
--save-video, --render controlnet, OpenPose's options): they write the files pafpose predict
writes, with the same names. summary.json says what the run did.

Run the same command again after a crash, Ctrl-C or a killed worker: only what is missing
is done, and every input ends up in the results exactly once. A file that can't be read is
an error row; the exit code is 1 when this run left inputs as error rows (0 when there was
nothing left to do: the errors stand, and --retry-errors runs them again), 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from pathlib import Path

from pafpose.checks import number
from pafpose.cli.options import add_model_arguments, config_from_args, stop_on_sigterm, warn
from pafpose.cli.predict import add_output_arguments
from pafpose.errors import PafposeError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="poses for a whole data set, here or on Ray (local or a cluster), resumable",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="folder, glob, image or video file or URL, list file (.txt) or manifest (.csv, .parquet)")
    p.add_argument("--out", type=_out_folder, required=True,
                   help="output folder (results/, summary.json, per-file outputs), or an object-store prefix "
                   "(s3://bucket/poses, gs://...)")
    p.add_argument("--format", choices=("parquet", "jsonl"), default="parquet",
                   help="result files: Parquet or JSON Lines (default: %(default)s)")
    p.add_argument("--no-track", action="store_true", help="videos: no person ids across frames and no smoothing")
    p.add_argument("--online", action="store_true",
                   help="track video files as live streams are (each frame smoothed from the frames before it "
                   "only); by default from the frames on both sides too, as pafpose predict does")
    p.add_argument("--timeout", type=number(0.1, 3600), default=10.0,
                   help="seconds to wait for a URL (each image, or a stream's frames) (default: %(default)s)")
    p.add_argument("--path-column", default="path", metavar="NAME",
                   help="manifests: the column of paths or URLs (default: %(default)s)")
    g = p.add_argument_group("Ray")
    g.add_argument("--address", default=None, metavar="ADDR",
                   help="join this Ray cluster (HOST:PORT, ray://HOST:PORT or auto; default: $RAY_ADDRESS, else a "
                   "local Ray instance on this machine)")
    g.add_argument("--workers", type=number(0, 10_000, integer=True), default=None,
                   help="Ray actors, each with the model loaded once; with --max-workers, the fewest; 0: in this "
                   "process, without Ray (default: 0 for a local run, where Ray would add its start-up and open "
                   "ports for nothing; 1 on a cluster, or with another Ray option)")
    g.add_argument("--max-workers", type=number(1, 10_000, integer=True), default=None, metavar="N",
                   help="an autoscaling pool: from --workers up to N actors while work waits (on a cluster whose "
                   "autoscaler adds nodes, the pool follows them; default: a pool of --workers)")
    g.add_argument("--cpus-per-worker", type=number(0.01, 1024), default=None, metavar="N",
                   help="CPUs each actor reserves, and its threads (default: the cluster's CPUs shared out, less a "
                   "quarter CPU for Ray Data's own tasks)")
    g.add_argument("--gpus-per-worker", type=number(0, 64), default=0.0, metavar="N",
                   help="GPUs each actor reserves (1; 0.5 puts two actors on a GPU; default: 0, the CPU)")
    g.add_argument("--shard-size", type=number(1, 100_000, integer=True), default=None, metavar="N",
                   help="images per Ray Data batch and per result file: the most work a crash can cost a worker "
                   "(default: 64, fewer where that gives each worker at least 4 batches)")
    g.add_argument("--verbose", action="store_true", help="show Ray's own logs, progress bars and the workers' output")
    g.add_argument("--log-every", type=number(0.1, 86400), default=30.0, metavar="SECONDS",
                   help="when stderr is no terminal (a log: nohup, CI, a scheduler), a progress line every this "
                   "many seconds: done, rate, time left, people, failures (default: 30)")
    g.add_argument("--retry-errors", action="store_true",
                   help="do the inputs whose results are error rows again (a URL that was down, a file since "
                   "replaced): their error rows are dropped and they are run like the missing ones")
    add_model_arguments(p)
    p.add_argument("--batch-size", type=number(1, 256, integer=True), default=1,
                   help="images or frames per network call (1..256; images of one input size go together)")
    add_output_arguments(p, json_default=None, shown="none")
    p.set_defaults(func=run)


def _out_folder(text: str) -> Path | str:
    """``--out``: a folder, or a prefix in object storage (``s3://bucket/poses``, kept a string:
    a Path would make it a local folder named ``s3:``). Another URL (http...) is refused in one
    line."""
    from pafpose.io import is_url
    from pafpose.storage import OBJECT_SCHEMES, is_object_url

    if is_object_url(text):
        return text.rstrip("/")
    if is_url(text):
        raise argparse.ArgumentTypeError(
            f"{text}: --out is a folder or an object-store prefix ({', '.join(s + '://' for s in OBJECT_SCHEMES)})")
    return Path(text)


def run(args: argparse.Namespace) -> int:
    from pafpose.batch.results import child
    from pafpose.batch.runner import BatchOptions, run, summary_text
    from pafpose.cli import openpose_flags

    outputs = openpose_flags.resolve(args, default_json="none")
    if getattr(args, "show", False):
        raise PafposeError("--display: pafpose batch shows no window (pafpose predict --show does)")
    config = config_from_args(args)
    options = BatchOptions(out=args.out, format=args.format, outputs=outputs, frames=args.frames, timeout=args.timeout,
                           batch_size=args.batch_size, shard_size=args.shard_size, track=not args.no_track,
                           online=args.online,
                           workers=args.workers, max_workers=args.max_workers, cpus_per_worker=args.cpus_per_worker,
                           gpus_per_worker=args.gpus_per_worker, address=args.address, path_column=args.path_column,
                           verbose=args.verbose, retry_errors=args.retry_errors, log_every=args.log_every)
    previous = stop_on_sigterm()
    try:
        summary = run(args.sources, config, options, progress=True, warn=warn)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    for line in summary_text(summary):
        print(line)
    if summary.ignored:
        print(f"ignored {summary.ignored} file{'s' * (summary.ignored != 1)} in folders that are neither images "
              "nor videos")
    print(f"results: {summary.results} of {summary.inputs} inputs in {child(args.out, 'results')}"
          + (f", {summary.errors_total} with errors" if summary.errors_total else ""))
    if summary.interrupted:
        return 130
    if summary.errors_total:
        again = " ".join(shlex.quote(a) for a in ["pafpose", *sys.argv[1:]] if a != "--retry-errors")
        n = summary.errors_total
        print(f"{n} input{'s' * (n != 1)} stand{'s' * (n == 1)} as error rows; to try {'them' if n != 1 else 'it'} "
              f"again: {again} --retry-errors")
    if summary.source_errors:
        return 1
    # the errors of this run fail it; those of earlier runs stand, said above (a scheduler's retry of a finished
    # job must not fail for ever)
    return 1 if summary.errors else 0

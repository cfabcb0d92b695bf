"""OpenPose's options in `pafpose predict`, for people switching from CMU OpenPose.

pafpose's own spellings (``--number-people-max``, ``--keypoint-scale``...) with OpenPose's
meaning, and OpenPose's spellings (``--number_people_max``, ``--write_json DIR``,
``--image_dir DIR``...) so that a script written for OpenPose's demo runs once its command's
name is changed. A flag pafpose cannot honour (hands, face, 3-D) is a one-line error saying
what pafpose has instead; flags about OpenPose's own logging, GUI or GPUs are accepted and
ignored with a notice. The "Switching from OpenPose" page (docs/openpose.md) says the same, flag by flag.

:func:`add_arguments` adds the options to the parser, :func:`prepare_argv` rewrites the
forms gflags accepts and argparse lacks (``-flag``, ``--flag=false``, ``--noflag``), and
:func:`resolve` checks them and turns them into :class:`~pafpose.outputs.OutputOptions` (and the
Estimator's settings: ``--net-resolution``, ``--scale_number``). The work is the library's
(:mod:`pafpose.openpose`, :mod:`pafpose.formats`); this module only reads the command line.
"""

from __future__ import annotations

import argparse
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pafpose.checks import number
from pafpose.errors import PafposeError
from pafpose.video import MIN_VIDEO_FPS

if TYPE_CHECKING:
    from pafpose.outputs import OutputOptions

_HANDS = ("hands come from MediaPipe's hand network on crops the body gives (--hand), at its own 224 x 224 input, "
          "drawn with the body")
_FACE = ("faces come from MediaPipe's face mesh on crops the body gives (--face), at its own 192 x 192 input, "
         "drawn with the body")
_3D = ("pafpose is 2-D only: triangulate its per-camera OpenPose JSON with Pose2Sim or anipose "
       "(--keypoints body25 writes the BODY_25 files Pose2Sim reads)")

#: OpenPose flags pafpose cannot honour, and what it has instead (a one-line error each).
NOT_OFFERED: dict[str, str] = {
    **dict.fromkeys(("hand_net_resolution", "hand_scale_number", "hand_scale_range", "hand_tracking",
                     "hand_render", "hand_render_threshold", "hand_alpha_pose", "hand_alpha_heatmap"), _HANDS),
    **dict.fromkeys(("face_net_resolution", "face_render", "face_render_threshold", "face_alpha_pose",
                     "face_alpha_heatmap"), _FACE),
    **dict.fromkeys(("3d", "3d_min_views", "3d_views", "flir_camera", "flir_camera_index", "camera_parameter_path",
                     "frame_undistort", "write_video_3d"), _3D),
    "body": "pafpose always finds the body: hands and faces come from crops it gives (--face_detector 1 and "
            "--hand_detector 1 find faces and hands without one)",
    "body_disable": "pafpose always finds the body: hands and faces come from crops it gives (--face_detector 1 "
                    "and --hand_detector 1 find faces and hands without one)",
    "output_resolution": "drawn images and videos have the source's size (--keypoint-scale 2 writes their pixels)",
    "part_to_show": "`pafpose explain IMAGE` draws the heatmaps and PAFs (--write-heatmaps writes them)",
    "alpha_pose": "skeletons are drawn opaque; --disable-blending draws them on black",
    "alpha_heatmap": "`pafpose explain IMAGE` draws the heatmaps over the image",
    "identification": "videos are tracked by default: person_id in the JSON is the person's id (--no-track: -1)",
    "tracking": "videos are tracked by default: person_id in the JSON is the person's id (--no-track: -1)",
    "ik_threads": "not offered (OpenPose marks it experimental and unavailable too)",
    "write_bvh": "not offered (OpenPose marks it experimental and unavailable too)",
    "write_video_adam": "not offered (OpenPose marks it experimental and unavailable too)",
    "udp_host": "`pafpose serve` answers poses over HTTP (JSON)",
    "udp_port": "`pafpose serve` answers poses over HTTP (JSON)",
    "write_keypoint": "deprecated in OpenPose: --write_json DIR",
    "write_keypoint_format": "deprecated in OpenPose: --write_json DIR",
    "write_coco_json": "--json coco writes coco_results.json (and coco_image_ids.json) under --out",
    "write_coco_foot_json": "--json coco writes coco_results.json under --out (with --feet, COCO-WholeBody's "
                            "foot_kpts)",
    "write_coco_json_variant": "--json coco writes coco_results.json under --out",
    "write_coco_json_variants": "--json coco writes coco_results.json under --out",
    "maximize_positives": "lower the decoder's thresholds instead (--peak-threshold, --min-score, --min-keypoints)",
    "frame_flip": "not offered: flip the video first (e.g. ffmpeg -vf hflip)",
    "frame_rotate": "not offered: rotate the video first (e.g. ffmpeg -vf transpose=1)",
    "frames_repeat": "not offered",
    "camera_resolution": "not offered: the camera's own resolution is used",
    "upsampling_ratio": "not offered: heatmap files are at the network input's resolution, as OpenPose's default",
    "prototxt_path": "--model openpose-coco|openpose-body25 --weights FILE.caffemodel (no prototxt needed)",
    "caffemodel_path": "--model openpose-coco|openpose-body25 --weights FILE.caffemodel",
    "write_video_with_audio": "not offered: the drawn video has no sound",
}

#: OpenPose flags about its own logging, GUI, threads and GPUs: accepted, ignored with a notice.
IGNORED: dict[str, str] = {
    "logging_level": "pafpose prints one line per problem",
    "disable_multi_thread": "pafpose's pipeline needs no such switch",
    "profile_speed": "`pafpose bench` measures speed",
    "cli_verbose": "pafpose shows a progress bar",
    "no_gui_verbose": "pafpose draws no text but the person ids",
    "fullscreen": "--show opens a plain window",
    "num_gpu": "pafpose runs on one device (--device)",
    "num_gpu_start": "pafpose runs on one device (--device cuda:N)",
    "fps_max": "pafpose runs as fast as it can",
    "process_real_time": "pafpose runs on every frame read",
    "model_folder": "weights come from pafpose's zoo (PAFPOSE_WEIGHTS_PATH, --weights FILE)",
}

#: OpenPose's flags pafpose takes (OpenPose's spelling -> pafpose's option), for docs/openpose.md.
TAKEN: dict[str, str] = {
    "image_dir": "SOURCE", "video": "SOURCE", "camera": "SOURCE", "ip_camera": "SOURCE",
    "write_json": "--out", "write_images": "--save-images", "write_images_format": "--save-images",
    "write_video": "--write-video", "write_video_fps": "--write-video-fps",
    "write_heatmaps": "--write-heatmaps", "write_heatmaps_format": "--write-heatmaps-format",
    "heatmaps_add_parts": "--heatmaps-add-parts", "heatmaps_add_bkg": "--heatmaps-add-bkg",
    "heatmaps_add_PAFs": "--heatmaps-add-pafs", "heatmaps_scale": "--heatmaps-scale",
    "part_candidates": "--part-candidates", "number_people_max": "--number-people-max",
    "keypoint_scale": "--keypoint-scale", "frame_first": "--frame-first", "frame_step": "--frame-step",
    "frame_last": "--frame-last", "net_resolution": "--net-resolution", "scale_number": "--scales",
    "scale_gap": "--scales", "render_threshold": "--render-threshold", "disable_blending": "--disable-blending",
    "render_pose": "--render-pose", "display": "--show", "model_pose": "--keypoints", "hand": "--hand",
    "face": "--face", "face_detector": "--face_detector", "hand_detector": "--hand_detector",
}

# gflags booleans: `--flag`, `--flag=true|false|1|0`, `--noflag`
_BOOLS = {"disable_blending", "part_candidates", "heatmaps_add_parts", "heatmaps_add_bkg", "heatmaps_add_PAFs",
          "hand", "face", "3d", "flir_camera", "frame_undistort", "body_disable", "identification",
          "maximize_positives", "frame_flip", "frames_repeat", "process_real_time", "disable_multi_thread",
          "fullscreen", "no_gui_verbose", "hand_tracking", "write_video_with_audio"}
_ALL = set(NOT_OFFERED) | set(IGNORED) | set(TAKEN)
_DASHED_VALUES = {"--net_resolution", "--net-resolution"}  # take values such as -1x368, which argparse reads as options
_WRITE_DIRS = {"write_json": "op_json_dir", "write_images": "op_images_dir", "write_heatmaps": "op_heatmaps_dir"}


def prepare_argv(argv: list[str]) -> list[str]:
    """OpenPose's flags as gflags accepts them, in the forms argparse reads.

    ``-flag`` -> ``--flag``; ``--net_resolution -1x368`` -> ``--net_resolution=-1x368``; a
    boolean's ``--flag=true`` -> ``--flag``, ``--flag=false`` and ``--noflag`` -> nothing (it
    is off, as by default). Other arguments are left alone (a boolean given another value is
    then argparse's one-line error).
    """
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":  # what follows is no option
            out += argv[i:]
            break
        name, eq, value = arg.lstrip("-").partition("=")
        if out and out[-1] in _DASHED_VALUES and arg.startswith("-"):  # --net_resolution -1x368: a value
            out[-1] += "=" + arg
        elif not arg.startswith("-") or arg.startswith("---"):
            out.append(arg)
        elif name in _BOOLS and eq and value.lower() in ("true", "1", "yes", "t", "y"):
            out.append("--" + name)
        elif name in _BOOLS and eq and value.lower() in ("false", "0", "no", "f", "n"):
            continue  # off, as by default
        elif name.startswith("no") and name[2:] in _BOOLS and not eq:
            continue
        elif name in _ALL and not arg.startswith("--"):
            out.append("-" + arg)
        else:
            out.append(arg)
    return out


class _Refuse(argparse.Action):
    """An OpenPose flag pafpose cannot honour: a one-line error saying what it has instead."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        parser.error(f"{option_string}: {NOT_OFFERED[self.dest[len('op_no_'):]]}")


class _Ignore(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        name = self.dest[len("op_ignore_"):]
        namespace.op_notices = [*getattr(namespace, "op_notices", []), f"{option_string} ignored: {IGNORED[name]}"]


class _Source(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if option_string == "--camera":
            values = "0" if str(values).strip() in ("-1", "") else str(values)
        namespace.op_sources = [*getattr(namespace, "op_sources", []), str(values)]


class _Spelled(argparse.Action):
    """An OpenPose-spelled option: stores its value and notes that OpenPose's spelling was used."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        namespace.op_spelled = [*getattr(namespace, "op_spelled", []), option_string]


def _net_resolution(text: str) -> tuple[int | None, int | None]:
    from pafpose.openpose import parse_net_resolution

    try:
        return parse_net_resolution(text)
    except PafposeError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


_LAYOUTS = ("coco18", "body25", "coco17")

_IMAGE_FORMATS = ("png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """pafpose's OpenPose options (in --help) and OpenPose's own spellings (listed in docs/openpose.md)."""
    g = p.add_argument_group("OpenPose's options", "as OpenPose's flags of the same name (their underscore "
                             "spellings, --write_json DIR, --image_dir DIR... work too; the documentation's "
                             "page: Switching from OpenPose)")
    g.add_argument("--number-people-max", type=number(-1, 100_000, integer=True), default=-1, metavar="N",
                   help="keep the N people OpenPose would keep (score times the root of their area); -1: all")
    g.add_argument("--keypoint-scale", type=int, choices=range(5), default=0, metavar="0..4",
                   help="JSON coordinates: 0 source pixels, 1 network input pixels, 2 drawn output pixels, 3 [0,1], "
                   "4 [-1,1]")
    g.add_argument("--frame-first", type=number(0, 10**12, integer=True), default=0, metavar="N",
                   help="first frame run on (0-based; also a folder's images, in name order)")
    g.add_argument("--frame-step", type=number(1, 10**9, integer=True), default=1, metavar="N",
                   help="run on every N-th frame from the first")
    g.add_argument("--frame-last", type=number(-1, 10**12, integer=True), default=-1, metavar="N",
                   help="last frame run on (included); -1: to the end")
    g.add_argument("--net-resolution", type=_net_resolution, default=None, metavar="WxH",
                   help="network input size, e.g. -1x368 (the width follows the image) or 656x368 "
                   "(the image fitted inside); instead of --height")
    g.add_argument("--render-threshold", type=number(0, 1), dest="threshold", default=argparse.SUPPRESS,
                   metavar="X", help="same as --threshold")
    g.add_argument("--render-pose", type=int, choices=(-1, 0, 1, 2), default=-1, metavar="N",
                   help="0: draw no skeletons (the drawn outputs are the frames); -1, 1, 2: draw them")
    g.add_argument("--disable-blending", action="store_true", help="draw the skeletons on black, not on the image")
    g.add_argument("--part-candidates", action="store_true",
                   help="add OpenPose's part_candidates to the JSON: every keypoint candidate, before grouping")
    g.add_argument("--write-heatmaps", action="store_true",
                   help="write NAME_pose_heatmaps.png: the parts, background and PAFs side by side, OpenPose's layout")
    g.add_argument("--heatmaps-add-parts", action="store_true", help="heatmap files hold the parts (none of the "
                   "three --heatmaps-add-* given: all three)")
    g.add_argument("--heatmaps-add-bkg", action="store_true", help="heatmap files hold the background")
    g.add_argument("--heatmaps-add-pafs", action="store_true", help="heatmap files hold the PAFs")
    g.add_argument("--heatmaps-scale", type=int, choices=range(4), default=2, metavar="0..3",
                   help="heatmap values: 0 [-1,1], 1 [0,1], 2 [0,255] (default), 3 unscaled")
    g.add_argument("--write-heatmaps-format", choices=("png", "float"), default="png",
                   help="png, or float: OpenPose's raw float32 format (NAME_pose_heatmaps.float)")
    g.add_argument("--write-video", type=Path, default=None, metavar="PATH",
                   help="one video of every drawn image and frame of the run (.avi, .mp4, .mkv, .mov)")
    g.add_argument("--write-video-fps", type=number(-1, 1000), default=-1, metavar="FPS",
                   help=f"its frame rate, {MIN_VIDEO_FPS:g} (a frame every 1000 s) up to, not including, 1000 "
                   "(default: the first video source's)")
    g.add_argument("--keypoints", choices=_LAYOUTS, default=None,
                   help="keypoint layout of the OpenPose JSON, by name: body25 (mid-hip from the hips, the heels and "
                   "big toes found by --feet, the small toes missing), coco18, coco17 (default: the model's)")

    w = p.add_argument_group("whole body", "hands, face and feet from crops the body gives (MediaPipe's networks; "
                             "--parts, --face_detector and --hand_detector are the model's options)")
    w.add_argument("--hand", action="store_true", help="each person's hands: 21 points each (OpenPose's "
                   "hand_left_keypoints_2d, hand_right_keypoints_2d)")
    w.add_argument("--face", action="store_true", help="each person's face: 68 points and the 2 pupils (OpenPose's "
                   "face_keypoints_2d)")
    w.add_argument("--feet", action="store_true", help="each person's heels and big toes (BODY_25's feet: "
                   "--keypoints body25 asks for them, and they make it the OpenPose JSON's layout; the small toes "
                   "are never found, written as missing)")
    w.add_argument("--whole-body", action="store_true", help="--hand --face --feet")

    def alias(flag: str, dest: str, **kw: Any) -> None:
        kw.setdefault("action", _Spelled)
        p.add_argument("--" + flag, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kw)

    alias("number_people_max", "number_people_max", type=number(-1, 100_000, integer=True))
    alias("keypoint_scale", "keypoint_scale", type=int, choices=range(5))
    alias("frame_first", "frame_first", type=number(0, 10**12, integer=True))
    alias("frame_step", "frame_step", type=number(1, 10**9, integer=True))
    alias("frame_last", "frame_last", type=number(-1, 10**12, integer=True))
    alias("net_resolution", "net_resolution", type=_net_resolution)
    alias("render_threshold", "threshold", type=number(0, 1))
    alias("render_pose", "render_pose", type=int, choices=(-1, 0, 1, 2))
    for flag in ("disable_blending", "part_candidates", "heatmaps_add_parts", "heatmaps_add_bkg"):
        alias(flag, flag, nargs=0, const=True)
    alias("heatmaps_add_PAFs", "heatmaps_add_pafs", nargs=0, const=True)
    alias("heatmaps_scale", "heatmaps_scale", type=int, choices=range(4))
    alias("write_heatmaps_format", "write_heatmaps_format", choices=("png", "float"))
    alias("write_video", "write_video", type=Path)
    alias("write_video_fps", "write_video_fps", type=number(-1, 1000))
    for flag, dest in _WRITE_DIRS.items():
        alias(flag, dest, type=Path, metavar="DIR")
    alias("write_images_format", "op_images_format", choices=_IMAGE_FORMATS)
    alias("display", "op_display", type=int, choices=(-1, 0, 1, 2, 3))
    alias("model_pose", "op_model_pose")
    alias("scale_number", "op_scale_number", type=number(1, 4, integer=True))
    alias("scale_gap", "op_scale_gap", type=number(0, 1))
    for flag in ("image_dir", "video", "camera", "ip_camera"):
        p.add_argument("--" + flag, action=_Source, dest="op_sources", default=[], help=argparse.SUPPRESS)
    for flag in NOT_OFFERED:
        p.add_argument("--" + flag, action=_Refuse, nargs="?", dest="op_no_" + flag, help=argparse.SUPPRESS)
    for flag in IGNORED:
        p.add_argument("--" + flag, action=_Ignore, nargs=0 if flag in _BOOLS else None,
                       dest="op_ignore_" + flag, help=argparse.SUPPRESS)


def resolve(args: argparse.Namespace, default_json: str = "openpose") -> OutputOptions:
    """Check OpenPose's options together, apply those that are the Estimator's or the run's
    (sources, --height, --scales, --show, --json, --out, --save-images, the frames: ``args.frames``)
    to ``args``, and return what the run writes (``default_json`` when neither --json nor
    --write_json says: predict's openpose, batch's none). Conflicts are one-line errors."""
    from pafpose.outputs import HeatmapOptions, OutputOptions
    from pafpose.video import FrameRange

    for notice in getattr(args, "op_notices", []):
        from pafpose.cli.options import warn

        warn(notice)
    spelled = set(getattr(args, "op_spelled", []))
    args.sources = [*args.sources, *getattr(args, "op_sources", [])]

    display = getattr(args, "op_display", -1)
    if display == 3:
        raise PafposeError(f"--display 3: {_3D}")
    if display in (1, 2):
        args.show = True

    model_pose = getattr(args, "op_model_pose", None)
    if model_pose is not None:
        layout = _MODEL_POSES.get(model_pose.upper())
        if layout is None:
            raise PafposeError(f"--model_pose {model_pose}: pafpose has no {model_pose.upper()} model; it writes "
                               "BODY_25 (--model_pose BODY_25 = --keypoints body25, feet included) and COCO "
                               "(--keypoints coco18)")
        if args.keypoints is not None and args.keypoints != layout:
            raise PafposeError(f"--model_pose {model_pose} and --keypoints {args.keypoints} disagree; give one")
        args.keypoints = layout
    _whole_body(args)

    _scales_from_openpose(args)
    if args.net_resolution is not None:
        from pafpose.openpose import net_resolution_options

        if args.height is not None:
            raise PafposeError("--net-resolution and --height both set the network input size; give one")
        for key, value in net_resolution_options(*args.net_resolution).items():
            setattr(args, key, value)

    out_given = args.out is not None
    args.out = Path("pafpose-out") if args.out is None else args.out
    json_dir = getattr(args, "op_json_dir", None)
    if args.json is None:  # OpenPose writes only what it is asked to: a script's --write_images alone, no JSON
        openpose_writes = spelled & {"--write_images", "--write_video", "--write_heatmaps"}
        if json_dir is not None:
            args.json = "openpose"
        elif default_json != "openpose":
            args.json = default_json
        else:
            args.json = "none" if (openpose_writes and not out_given) else "openpose"
    images_dir = getattr(args, "op_images_dir", None)
    if images_dir is not None:
        args.save_images = True
    heatmaps_dir = getattr(args, "op_heatmaps_dir", None)
    heatmaps = None
    if args.write_heatmaps or heatmaps_dir is not None:
        chosen = (args.heatmaps_add_parts, args.heatmaps_add_bkg, args.heatmaps_add_pafs)
        parts, background, pafs = chosen if any(chosen) else (True, True, True)
        heatmaps = HeatmapOptions(heatmaps_dir or args.out, parts, background, pafs, args.heatmaps_scale,
                                  args.write_heatmaps_format)
    for what, folder in (("--write_json", json_dir), ("--write_images", images_dir),
                         ("--write_heatmaps", heatmaps_dir)):
        if folder is not None and folder.exists() and not folder.is_dir():
            raise PafposeError(f"{what} {folder}: exists and is not a folder")

    openpose_only = [flag for flag, on in (("--keypoints", args.keypoints is not None),
                                           ("--keypoint-scale", args.keypoint_scale != 0),
                                           ("--part-candidates", args.part_candidates)) if on]
    if openpose_only and args.json != "openpose":
        raise PafposeError(f"{openpose_only[0]} shapes the OpenPose JSON, but --json is {args.json}")
    if "feet" in args.parts and args.keypoints is None and args.json == "openpose" and not _own_feet(args):
        args.keypoints = "body25"  # OpenPose's layout with feet: where the heels and big toes are written
    if args.number_people_max == 0:
        raise PafposeError("--number-people-max 0 would keep nobody; -1 keeps everyone")
    fps = args.write_video_fps
    if fps != -1 and not MIN_VIDEO_FPS <= fps < 1000:  # below, the writer's 1/1001 rate steps round it to 0
        raise PafposeError(f"--write-video-fps must be -1 (the source's) or in [{MIN_VIDEO_FPS:g}, 1000), "
                           f"got {Decimal(str(fps)):f}")
    args.frames = FrameRange(args.frame_first, args.frame_step, None if args.frame_last == -1 else args.frame_last)
    return OutputOptions(
        out=args.out,
        json=args.json,
        save_images=args.save_images,
        save_video=getattr(args, "save_video", False),
        threshold=args.threshold,
        controlnet=controlnet_resolutions(args),
        controlnet_mode=controlnet_mode(args),
        number_people_max=None if args.number_people_max == -1 else args.number_people_max,
        keypoint_scale=args.keypoint_scale,
        keypoints=args.keypoints,
        part_candidates=args.part_candidates,
        heatmaps=heatmaps,
        render=args.render_pose != 0,
        disable_blending=args.disable_blending,
        write_video=args.write_video,
        write_video_fps=None if fps == -1 else float(fps),
        json_dir=json_dir,
        images_dir=images_dir,
        images_format=getattr(args, "op_images_format", None),
    )


_MODEL_POSES = {"BODY_25": "body25", "COCO": "coco18", "COCO_18": "coco18"}


def _whole_body(args: argparse.Namespace) -> None:
    """--hand, --face, --feet, --whole-body and --keypoints body25 into the model's ``parts``:
    BODY_25 files get their feet unless the model finds feet itself."""
    parts = list(getattr(args, "parts", []) or [])
    wanted = {"hands": args.hand, "face": args.face, "feet": args.feet}
    parts += [name for name, on in wanted.items() if on or args.whole_body]
    if getattr(args, "render", "pafpose") == "controlnet" and getattr(args, "controlnet_mode", None):
        from pafpose.controlnet import parts_needed

        needed = parts_needed(args.controlnet_mode)  # ControlNet's hand and face modes draw what they need
        parts += ["hands"] * bool(needed & {"hand_left", "hand_right"}) + ["face"] * ("face" in needed)
    if args.keypoints == "body25" and "feet" not in parts and not _own_feet(args):
        parts.append("feet")
    args.parts = parts


def _own_feet(args: argparse.Namespace) -> bool:
    """Whether the model finds feet itself (CMU's BODY_25 network)."""
    from pafpose.weights import get_pretrained_cfg

    try:
        return get_pretrained_cfg(args.model or "").skeleton == "body25"
    except PafposeError:
        return False


def controlnet_resolutions(args: argparse.Namespace) -> tuple[int, int] | None:
    """(detect, image) resolution for --render controlnet, else None; the resolutions alone are a mistake."""
    from pafpose.controlnet import DEFAULT_RESOLUTION

    if getattr(args, "render", "pafpose") != "controlnet":
        if getattr(args, "detect_resolution", None) is not None or getattr(args, "image_resolution", None) is not None:
            raise PafposeError("--detect-resolution and --image-resolution are for --render controlnet")
        return None
    return (DEFAULT_RESOLUTION if args.detect_resolution is None else args.detect_resolution,
            DEFAULT_RESOLUTION if args.image_resolution is None else args.image_resolution)


def controlnet_mode(args: argparse.Namespace) -> str:
    """--controlnet-mode (default: the body alone); without --render controlnet it is a mistake."""
    from pafpose.controlnet import DEFAULT_MODE

    mode = getattr(args, "controlnet_mode", None)
    if mode is not None and getattr(args, "render", "pafpose") != "controlnet":
        raise PafposeError("--controlnet-mode is for --render controlnet")
    return DEFAULT_MODE if mode is None else mode


def _scales_from_openpose(args: argparse.Namespace) -> None:
    """OpenPose's ``--scale_number N --scale_gap G`` (scales 1, 1 - G, 1 - 2G...) as ``--scales``."""
    n, gap = getattr(args, "op_scale_number", None), getattr(args, "op_scale_gap", None)
    if n is None and gap is None:
        return
    n = 1 if n is None else n
    gap = 0.25 if gap is None else gap  # OpenPose's default gap (0.3 before 1.4; unused for one scale)
    scales = [round(1.0 - i * gap, 6) for i in range(n)]
    if list(args.scales) != [1.0]:
        raise PafposeError("--scale_number/--scale_gap and --scales both set the scales; give one")
    if min(scales) < 0.25:
        raise PafposeError(f"--scale_number {n} --scale_gap {gap:g} gives scale {min(scales):g}; pafpose's scales "
                           "are 0.25 to 2")
    args.scales = scales

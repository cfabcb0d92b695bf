"""Issue 23's experiment: does fusing BlazePose's body points (the feet crop runs it on every
person anyway) with the PAF keypoints raise COCO AP?

For each person the feet's BlazePose crop (:func:`pafpose.wholebody.crops.person_crop`) is run
once; its 17 COCO points are then fused with the PAF keypoints in three ways and each result
is scored with pycocotools on the same images: ``average`` (where both are confident, the mean
of the two positions), ``fill`` (BlazePose's point where the PAF has none), ``both``. The
body-only AP is measured in the same run.

    python benchmarks/wholebody_fusion.py --set val2017-dev [--visibility 0.8]
"""

from __future__ import annotations

import time

import numpy as np

from _coco_set import load, parser

# BlazePose's index of each COCO-17 keypoint (nose, eyes, ears, shoulders ... ankles; left first in COCO)
BLAZE_OF_COCO17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--visibility", type=float, default=0.8, help="BlazePose's visibility a point needs")
    p.add_argument("--score", type=float, default=0.3, help="the PAF score a point needs to be averaged")
    args = p.parse_args()
    loaded = load(args)
    if loaded is None:
        return
    root, gt, ids = loaded
    import cv2

    from pafpose import Estimator
    from pafpose.evaluate import coco_eval
    from pafpose.pose import Poses
    from pafpose.skeleton import COCO17
    from pafpose.wholebody import BODY_THRESHOLD
    from pafpose.wholebody.crops import body_points, person_crop
    from pafpose.wholebody.nets import landmark_net, sigmoid, to_input

    est = Estimator()
    net = landmark_net("mediapipe-pose")
    variants = ("body only", "average", "fill", "both")
    results: dict[str, list] = {v: [] for v in variants}
    t0 = time.perf_counter()
    for image_id in ids:
        info = gt.loadImgs(image_id)[0]
        image = cv2.imread(str(root / "images" / info["file_name"]))
        people = est.predict(image).convert(COCO17)
        blaze = []
        for p in people:
            crop = person_crop(body_points(p.keypoints, p.skeleton.keypoints, BODY_THRESHOLD))
            if crop is None:
                blaze.append(None)
                continue
            lm = net(to_input([crop.cut(image, net.side)]))[0].reshape(39, 5)
            pts = crop.to_image(lm, net.side)[list(BLAZE_OF_COCO17)]
            blaze.append(np.column_stack([pts[:, :2], sigmoid(pts[:, 3])]))
        for variant in variants:
            fused = []
            for p, b in zip(people, blaze, strict=True):
                k = p.keypoints.copy()
                if b is not None and variant != "body only":
                    seen = b[:, 2] >= args.visibility
                    have = np.isfinite(k[:, 0])
                    if variant in ("average", "both"):
                        both = seen & have & (k[:, 2] >= args.score)
                        k[both, :2] = (k[both, :2] + b[both, :2]) / 2
                    if variant in ("fill", "both"):
                        add = seen & ~have
                        k[add] = np.column_stack([b[add, :2], np.minimum(b[add, 2], 0.5)])
                fused.append(p.replace(k))
            results[variant] += Poses(fused).to_coco(image_id)
    seconds = time.perf_counter() - t0
    print(f"{args.set}: {len(ids)} images, {seconds:.0f} s; visibility >= {args.visibility}, PAF score >= {args.score}")
    base = None
    for variant in variants:
        ap = coco_eval(gt, results[variant], ids)["AP"]
        base = ap if base is None else base
        print(f"  {variant:10s} AP {ap:.4f} ({ap - base:+.4f})")
    print(f"python benchmarks/wholebody_fusion.py --set {args.set} --visibility {args.visibility} --score {args.score}")


if __name__ == "__main__":
    main()

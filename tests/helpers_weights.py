"""The real weight files under ../shared that several test files read, and their sizes."""


IR = "weights/human-pose-estimation-0001/FP16-INT8/human-pose-estimation-0001"

PB = "weights/tf-pose-mobilenet_v2_small/graph_opt.pb"
TFLITE = "weights/mobilenet-v2-pose/mobilenet_v2_pose_{}_368_432_weight_quant.tflite"
FILES = {"small": PB, **{dm: TFLITE.format(dm) for dm in ("dm05", "dm07", "dm10", "dm14")}}
# Measured from the files: conv weights + biases (TFLite: BN folded) or + BN gamma/beta
# (GraphDef; the head's BNs have beta only, slim's scale=False). tf-pose: "small" ~0.48 M.
PARAMS = {"small": 473_472, "dm05": 469_336, "dm07": 963_040, "dm10": 1_615_520, "dm14": 2_204_720}

"""pafpose: multi-person 2D pose estimation with Part Affinity Fields."""

from pafpose.decoder import Decoder, DecoderConfig, decode
from pafpose.encoder import Encoder, EncoderConfig, Targets
from pafpose.errors import PafposeError
from pafpose.fields import OPENPOSE_COCO18, FieldSpec
from pafpose.pose import Pose, Poses
from pafpose.skeleton import BODY25, COCO17, COCO18, Skeleton, get_skeleton

__version__ = "0.1.0"

__all__ = [
    "BODY25",
    "COCO17",
    "COCO18",
    "OPENPOSE_COCO18",
    "Decoder",
    "DecoderConfig",
    "Encoder",
    "EncoderConfig",
    "FieldSpec",
    "PafposeError",
    "Pose",
    "Poses",
    "Skeleton",
    "Targets",
    "__version__",
    "decode",
    "get_skeleton",
]

"""Heatmaps + Part Affinity Fields -> people.

Three steps, the mirror of :mod:`pafpose.encoder`:

1. :func:`find_peaks` (:mod:`~pafpose.decoder.peaks`): keypoint candidates by 3x3
   non-maximum suppression, a threshold, and sub-pixel refinement on the field itself (no
   upsampling of the maps; :mod:`~pafpose.decoder.refine`).
2. :func:`score_limbs` (:mod:`~pafpose.decoder.limbs`): for every limb, the PAF line
   integral of all candidate pairs at once (bilinear sampling), the original's criteria,
   and greedy one-to-one matching.
3. :func:`assemble` (:mod:`~pafpose.decoder.assembly`): people grown from limb connections
   in limb order, merging partial people that share no keypoint type; redundant limbs
   (those closing a cycle, such as COCO-18's shoulder-ear) only confirm or extend people,
   never start one.

Optionally, :func:`fill_missing` (:mod:`~pafpose.decoder.fill`) completes each person from
the heatmaps. :class:`DecoderConfig` (:mod:`~pafpose.decoder.config`) holds every
threshold; :class:`Decoder` (:mod:`~pafpose.decoder.core`) runs the steps on numpy arrays
or torch tensors, one image or a batch (that module says which step runs on a GPU, and why).

The modules import one another only downward (config, refine, peaks, limbs, assembly,
fill, core), never this package.
"""

from pafpose.decoder.assembly import assemble
from pafpose.decoder.config import DECODER_BOUNDS, DecoderConfig, Refine
from pafpose.decoder.core import Decoder, decode
from pafpose.decoder.fill import fill_missing
from pafpose.decoder.limbs import Connections, score_limbs
from pafpose.decoder.peaks import Peaks, find_peaks

__all__ = [
    "DECODER_BOUNDS",
    "Connections",
    "Decoder",
    "DecoderConfig",
    "Peaks",
    "Refine",
    "assemble",
    "decode",
    "fill_missing",
    "find_peaks",
    "score_limbs",
]

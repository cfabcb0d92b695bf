"""Poses for a whole data set: distributed, resumable batch inference on Ray Data
(``pafpose batch``; ``pip install 'pafpose[ray]'``).

- :mod:`~pafpose.batch.inputs`: sources, list files and manifests -> one item per image or video;
- :mod:`~pafpose.batch.results`: the result rows (:data:`SCHEMA`) and their shard files;
- :mod:`~pafpose.batch.ledger`: what is done (the shards present), resume, one run per folder;
- :mod:`~pafpose.batch.worker`: one Ray actor's work (an Estimator, loaded once);
- :mod:`~pafpose.batch.cluster`: a local Ray instance, or a cluster joined by address;
- :mod:`~pafpose.batch.runner`: a run end to end (:func:`run`).

Ray is imported only when a run starts, so reading results needs pyarrow alone.

Example:
    >>> from pafpose.batch import read_results
    >>> table = read_results("poses-out")  # every input once, as a pyarrow Table
"""

from pafpose.batch.results import PROVENANCE, SCHEMA, read_results, results_frame
from pafpose.batch.runner import BatchOptions, Summary, run

__all__ = ["PROVENANCE", "SCHEMA", "BatchOptions", "Summary", "read_results", "results_frame", "run"]

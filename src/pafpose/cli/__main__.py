"""``python -m pafpose.cli`` (what ``torchrun ... -m pafpose.cli train`` runs)."""

import sys

from pafpose.cli import main

sys.exit(main())

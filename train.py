"""Train, validate, test or predict: ``python train.py fit --config configs/synthetic.yaml``."""

import sys

from vidrec.checkpoint import CheckpointError
from vidrec.data.manifest import ManifestError
from vidrec.models.backbone import BackboneWeightsError
from vidrec.training.cli import cli_main

if __name__ == "__main__":
    try:
        cli_main()
    except (ManifestError, BackboneWeightsError, CheckpointError) as err:
        # What the user gave is wrong (a manifest, offline weights, a checkpoint or a --ckpt_path
        # that is not there): the message names the file and says what to do, and a traceback
        # would only bury it. Anything else keeps its traceback.
        sys.exit(f"train.py: error: {err}")

"""The training command line: LightningCLI with the datamodule's classes and vocabulary linked in.

    python train.py fit --config configs/synthetic.yaml
    python train.py test --config configs/synthetic.yaml --ckpt_path best
"""

from __future__ import annotations

from pytorch_lightning.cli import LightningCLI

from vidrec.data.datamodule import VideoDataModule
from vidrec.lit_module import VidRecModule

__all__ = ["VidRecCLI", "cli_main"]


class VidRecCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        # The class list and vocabulary are read from the training manifest when the
        # datamodule is built, then handed to the model (and saved in its checkpoint).
        parser.link_arguments("data.classes", "model.classes", apply_on="instantiate")
        parser.link_arguments("data.vocab_tokens", "model.vocab", apply_on="instantiate")


def cli_main(args: list[str] | None = None, run: bool = True) -> VidRecCLI:
    """Entry point of ``train.py``; ``args`` lets tests and scripts call it in-process."""
    return VidRecCLI(
        VidRecModule,
        VideoDataModule,
        args=args,
        run=run,
        save_config_kwargs={"overwrite": True},
    )

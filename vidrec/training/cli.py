"""The training command line: LightningCLI with the data and the model linked both ways they must be.

    python train.py fit --config configs/synthetic.yaml
    python train.py test --config configs/synthetic.yaml --ckpt_path best

Links:
- the class list, vocabulary and caption length go from the datamodule (which reads them from
  the training manifest) to the model, which saves them in its checkpoint;
- with ``--ckpt_path``, the checkpoint's class list and vocabulary go to the datamodule
  instead: a checkpoint is scored with the labels it was trained on, whatever order another
  manifest would sort them into, and needs no training manifest;
- the backbone's input normalisation and the motion input go from the model's settings to the
  datamodule when the config is parsed, so the datamodule never has to look at the model.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from pytorch_lightning import Callback, Trainer
from pytorch_lightning.callbacks import LearningRateMonitor, RichProgressBar
from pytorch_lightning.callbacks.progress import ProgressBar
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

from vidrec.checkpoint import read_checkpoint
from vidrec.data.clips import ClipSpec
from vidrec.data.datamodule import VideoDataModule
from vidrec.data.transforms import Normalization
from vidrec.models.backbone import pretrained_normalization
from vidrec.training.clip_settings import clip_differences
from vidrec.training.lit_module import VidRecModule
from vidrec.training.resume_folder import keep_checkpoint_folder

__all__ = ["VidRecCLI", "cli_main", "BASE_CONFIG"]

# Read before any --config: every shipped config holds only what differs from it.
BASE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "base.yaml"
SUBCOMMANDS = ("fit", "validate", "test", "predict")


def _normalization(backbone: str, weights: str) -> Normalization:
    return pretrained_normalization(backbone, weights)


def _logs_where_checkpoints_go(config) -> None:
    """One output folder per run, named once: a logger given no save_dir writes under default_root_dir."""
    logger = config.trainer.get("logger")
    init_args = getattr(logger, "init_args", None)
    if init_args is not None and "save_dir" in init_args and init_args.save_dir is None:
        init_args.save_dir = config.trainer.default_root_dir


def _check_ckpt_path(ckpt_path: str | None) -> None:
    """A local ``--ckpt_path`` that is missing, truncated, not a checkpoint or unsafe to load
    fails here with one ``CheckpointError`` line naming it, before Lightning reads its
    hyperparameters (a traceback ending in torch's advice to load it unsafely). Lightning's own
    names (best, last, hpc, registry...) and URLs pass."""
    if not ckpt_path or ckpt_path in ("best", "last", "hpc") or str(ckpt_path).startswith("registry") or "://" in str(ckpt_path):
        return
    read_checkpoint(ckpt_path, tensors=False)  # mapped, not read: only the checks


def _warn_if_clip_settings_differ(ckpt_path: str | None, data: Namespace, subcommand: str) -> None:
    """A local checkpoint trained with other clip settings than this run's ``--data``: one warning naming them."""
    if not ckpt_path or not Path(ckpt_path).is_file():  # best, last, a URL: nothing to compare yet
        return
    saved = read_checkpoint(ckpt_path, tensors=False).get("datamodule_hyper_parameters") or {}
    differences = clip_differences(saved, {f.name: data.get(f.name) for f in fields(ClipSpec)}) if saved else []
    if differences:
        rank_zero_warn(
            f"{ckpt_path} was trained with other clip settings than this run's --data: {'; '.join(differences)}. "
            f"{subcommand} reads its clips with this run's; pass the checkpoint's (--data.<name> <value>) "
            "to give the model inputs like its training ones."
        )


class VidRecCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments(("model.backbone", "model.weights"), "data.normalization", compute_fn=_normalization)
        # The motion input is the model's choice; the data computes it (flow) from the frames it samples.
        parser.link_arguments("model.motion", "data.motion")
        parser.link_arguments("data.classes", "model.classes", apply_on="instantiate")
        parser.link_arguments("data.vocab_tokens", "model.vocab", apply_on="instantiate")
        parser.link_arguments("data.max_caption_len", "model.max_caption_len", apply_on="instantiate")

    def parse_arguments(self, parser, args) -> None:
        self._parse_and_validate(parser, args)
        sub = self.config.get("subcommand")
        if sub:  # Lightning reads the checkpoint right after this
            _check_ckpt_path(self.config[sub].get("ckpt_path"))

    def _parse_and_validate(self, parser, args) -> None:
        if isinstance(args, (dict, Namespace)):
            return super().parse_arguments(parser, args)
        # CSVLogger and TensorBoardLogger require save_dir, so `--trainer.logger CSVLogger` alone
        # would fail validation before it could be filled in: parse, fill it, then validate.
        # ``_skip_validation`` is jsonargparse's own (private) switch: where a release drops it,
        # parsing goes the plain way and only that short form needs its save_dir again.
        try:
            config = parser.parse_args(args, _skip_validation=True)
        except TypeError:  # no such keyword in this jsonargparse
            return super().parse_arguments(parser, args)
        sub = config.get("subcommand")
        _logs_where_checkpoints_go(config[sub] if sub else config)
        try:
            parser.validate(config)
        except (TypeError, KeyError, ValueError) as err:
            parser.error(str(err))
        self.config = config

    def before_instantiate_classes(self) -> None:
        sub = self.config.get("subcommand")
        config = self.config[sub] if sub else self.config
        if sub and config.get("ckpt_path") and config.model.get("classes") is not None:
            # LightningCLI has already read the checkpoint's hyperparameters into the model's
            # config (weights_only); hand its class list and vocabulary to the datamodule.
            config.data.classes = list(config.model.classes or [])
            config.data.vocab = list(config.model.vocab or [])
        if sub:
            _warn_if_clip_settings_differ(config.get("ckpt_path"), config.data, sub)
        _logs_where_checkpoints_go(config)  # also for a config given as a dict or Namespace

    def before_fit(self) -> None:
        folder = keep_checkpoint_folder(self.trainer, self.config.fit.get("ckpt_path"))
        if folder is not None:
            rank_zero_info(f"vidrec: resumed: checkpoints continue in {folder}")

    def after_fit(self) -> None:
        # Where the run's checkpoints went (a logger version folder the user has not seen yet).
        for callback in self.trainer.checkpoint_callbacks:
            if callback.best_model_path:
                rank_zero_info(f"vidrec: best checkpoint ({callback.monitor}): {callback.best_model_path}")
            if callback.last_model_path and not callback.monitor:
                rank_zero_info(f"vidrec: last checkpoint: {callback.last_model_path}")

    def before_validate(self) -> None:
        # Scoring a checkpoint restores its callbacks too: in their own folder, Lightning does not
        # warn that "the dirpath has changed" (nothing is written there by validate or test).
        keep_checkpoint_folder(self.trainer, self.config.validate.get("ckpt_path"))

    def before_test(self) -> None:
        keep_checkpoint_folder(self.trainer, self.config.test.get("ckpt_path"))

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        # Callbacks that only make sense with a logger / a progress bar are added here, not in
        # the YAML, so `--trainer.logger false` and `--trainer.enable_progress_bar false` work.
        given = [*(config.get("callbacks") or []), *callbacks]
        if config.get("logger") not in (False, None) and not any(isinstance(c, LearningRateMonitor) for c in given):
            callbacks = [*callbacks, LearningRateMonitor()]
        if config.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in given):
            callbacks = [*callbacks, RichProgressBar()]
        return super()._instantiate_trainer(config, callbacks)


def cli_main(args: list[str] | None = None, run: bool = True) -> VidRecCLI:
    """Entry point of ``train.py``; ``args`` lets tests and scripts call it in-process."""
    base = [str(BASE_CONFIG)] if BASE_CONFIG.is_file() else []
    parser_kwargs = {"default_config_files": base} if not run else {sub: {"default_config_files": base} for sub in SUBCOMMANDS}
    return VidRecCLI(
        VidRecModule,
        VideoDataModule,
        args=args,
        run=run,
        parser_kwargs=parser_kwargs,
        save_config_kwargs={"overwrite": True},
    )

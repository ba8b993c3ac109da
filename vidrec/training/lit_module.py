"""VidRecModule: trains a ``VideoRecognizer`` — losses, metrics, logging. The network lives in ``net``."""

from __future__ import annotations

import math
import random
import warnings
from typing import Literal

import numpy as np

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from vidrec.data.clips import SkippedClip, central_row
from vidrec.data.vocab import Vocab
from vidrec.models.backbone import EFFICIENTNET_LITE0
from vidrec.models.net import build_recognizer
from vidrec.training.caption_metrics import CORPUS_SCORES
from vidrec.training.checkpoint_monitor import monitor_what_is_logged
from vidrec.training.class_accuracy import mean_class_accuracy, per_class_top1
from vidrec.training.metric_names import class_top1_key
from vidrec.training.selection_clips import clip_fingerprints, selection_warning

__all__ = ["VidRecModule", "rng_state", "set_rng_state"]


def central_view(
    encoding: torch.Tensor, sequence: torch.Tensor | None, crops: int = 1
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The central test view of each clip, N = views x ``crops`` view-major rows (``central_row``:
    the middle clip's centre crop): (B, N, H') -> (B, H'), (B, N, T, H') -> (B, T, H')."""
    if encoding.ndim == 3:
        c = central_row(encoding.shape[1], crops)
        return encoding[:, c], sequence[:, c] if sequence is not None else None
    return encoding, sequence


def rng_state() -> dict:
    """torch, CUDA, NumPy and Python random-number states, as tensors and plain types."""
    np_state = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": [version, list(internal), gauss],
    }


def set_rng_state(state: dict) -> None:
    """Inverse of ``rng_state``."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1


def _rank_rng_state(checkpoint: dict, warn: bool = True) -> dict | None:
    """This rank's ``rng_state()`` from a checkpoint: its own entry of ``vidrec_rng_ranks`` (one
    per rank, written under DDP), else the single ``vidrec_rng`` (one process, or a checkpoint of
    an older vidrec). A world size other than the checkpoint's: rank r takes the saved rank r's
    state if there is one, else rank 0's; a rank that takes another's does not continue as the
    interrupted run would have, so say so (``warn``: a fit resumes; loading weights does not care)."""
    states = checkpoint.get("vidrec_rng_ranks") or ([checkpoint["vidrec_rng"]] if "vidrec_rng" in checkpoint else [])
    if not states:
        return None
    rank, world = (torch.distributed.get_rank(), torch.distributed.get_world_size()) if _distributed() else (0, 1)
    if world != len(states) and warn:
        rank_zero_warn(
            f"vidrec: the checkpoint holds the random state of {len(states)} process(es), this run has {world}: "
            f"rank r resumes from saved rank r's state where there is one, else rank 0's, so data order, "
            f"dropout masks and augmentations will not continue exactly as in the interrupted run"
        )
    return states[rank] if rank < len(states) else states[0]


def _adamw(params):
    return torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2)


class VidRecModule(pl.LightningModule):
    """Action classification + captioning on top of a frozen CNN and an LSTM.

    ``classes`` and ``vocab`` are linked from the datamodule by the CLI and saved as
    hyperparameters, so a checkpoint alone rebuilds the model for inference.

    Loss = cross-entropy on labelled clips (``label_smoothing``) + ``caption_weight`` x token
    cross-entropy on clips with captions (padding ignored). A clip with only a label or only
    captions contributes only that term.

    The network's hyperparameters keep their names all the way to the part that takes them
    (``build_recognizer``): the backbone's (``backbone``, ``weights``, ``spatial_pooling``,
    ``grid``, ``trainable_layers``, ``backbone_blocks``), the temporal model's (``temporal``,
    ``hidden_size``, ``num_layers``, ``bidirectional``, ``temporal_dropout``,
    ``temporal_pooling``), the motion stream's (``motion``, ``motion_hidden_size``,
    ``appearance_dropout``, ``motion_speed_jitter``: training clips' flow statistics scaled by a
    random factor in exp(+-jitter), as if filmed faster or slower), the heads'
    (``head_dropout``, ``caption_*``), and the network's own ``caption_from_action`` (the caption decoder also reads the action head's probabilities)
    and ``caption_video_dropout`` (the share of training clips whose captions see only the class).
    """

    def __init__(
        self,
        classes: list[str] | None = None,
        vocab: list[str] | None = None,
        backbone: str = EFFICIENTNET_LITE0,
        weights: str = "DEFAULT",
        spatial_pooling: Literal["avg", "grid"] = "avg",
        grid: int = 2,
        trainable_layers: int = 0,
        backbone_blocks: int | None = None,
        temporal: Literal["lstm", "gru", "rnn", "mean"] = "lstm",
        hidden_size: int = 512,
        num_layers: int = 1,
        bidirectional: bool = False,
        temporal_dropout: float = 0.5,
        temporal_pooling: Literal["last", "mean", "attention"] = "last",
        head_dropout: float = 0.5,
        caption_embed_dim: int = 256,
        caption_hidden_size: int = 512,
        caption_dropout: float = 0.3,
        caption_attention: bool = False,
        motion: Literal["none", "feature_diff", "flow", "flow_stats"] = "none",
        motion_hidden_size: int = 128,
        appearance_dropout: float = 0.0,
        motion_speed_jitter: float = 0.0,
        caption_from_action: bool = False,
        caption_video_dropout: float = 0.0,
        caption_weight: float = 1.0,
        label_smoothing: float = 0.0,
        beam_size: int = 1,
        max_caption_len: int = 20,
        length_penalty: float = 0.0,
        val_samples: int = 16,
        optimizer: OptimizerCallable = _adamw,
        scheduler: LRSchedulerCallable | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.classes = list(classes or [])
        self.vocab = Vocab(vocab) if vocab else None
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.net = build_recognizer(self.hparams)

        n = max(len(self.classes), 2)  # torchmetrics needs >= 2 classes; unused without an action head
        accuracy = MetricCollection(
            {
                "top1": MulticlassAccuracy(n, top_k=1, average="micro"),
                "top5": MulticlassAccuracy(n, top_k=min(5, n), average="micro"),
            },
            # torchmetrics' default compute groups merge metrics whose states are equal after the
            # first update. With a macro accuracy in this collection, a first batch all right at
            # top-1 (a test list sorted by class, an easy first class) made top5 share its state
            # for good and report top-1 accuracy. Never again, whatever metric is added here.
            compute_groups=False,
        )  # mean_class_acc comes from the confusion matrix (training/class_accuracy.py)
        self.val_metrics, self.test_metrics = accuracy.clone(), accuracy.clone()
        # Epoch means of the loss terms on val/test: each term weighted by what it is a mean over
        # (action: labelled clips; caption: caption tokens), as float sums that torchmetrics
        # adds up across ranks. Lightning's own weighted mean of a synced self.log divides by the
        # ranks' mean batch size as an integer, which is wrong when ranks hold unequal numbers of clips.
        terms = ["action_loss"] * (self.net.action_head is not None) + ["caption_loss"] * (self.net.caption_decoder is not None)
        self.eval_losses = torch.nn.ModuleDict(
            {stage: torch.nn.ModuleDict({term: MeanMetric() for term in terms}) for stage in ("val", "test")}
        )
        self.val_confusion, self.test_confusion = MulticlassConfusionMatrix(n), MulticlassConfusionMatrix(n)
        # The test confusion matrix also gives the per-class accuracy, logged as test/class_top1/<class>
        # (groups of classes are scored from it): see _eval_epoch_end.
        self._captions: dict[str, list[dict]] = {"val": [], "test": []}
        self._skipped: dict[str, list[SkippedClip]] = {"train": [], "val": [], "test": []}
        self._resumed_rng: dict | None = None  # this rank's random-number state of an interrupted run, until its next epoch
        # Fingerprints of the validation clips that choose checkpoints (selection_clips): this
        # fit's, saved into every checkpoint; a loaded checkpoint's, checked against the test set.
        self._val_clips: torch.Tensor | None = None
        self._selected_on: torch.Tensor | None = None
        self._test_crops = 1  # crops per test view (the datamodule's test_crops), for central_view

    # -- shared step ---------------------------------------------------------------------
    def model_step(
        self, batch: dict, encoding: torch.Tensor, sequence: torch.Tensor | None = None
    ) -> tuple[torch.Tensor | None, dict, torch.Tensor | None]:
        """(loss or None, its named terms, action logits (B, C) or None) for a batch and its encodings.

        ``encoding`` is (B, H'), or (B, N, H') for N test views of each clip: their softmax
        scores are averaged (the logits returned are the log of that mean), and the caption
        is scored on the central view, conditioned (``caption_from_action``) on the logits returned.
        ``sequence`` (B, [N,] T, H') feeds an attention decoder.
        """
        labels = batch["label"]
        terms: dict[str, torch.Tensor] = {}
        logits = None
        views = encoding if encoding.ndim == 3 else None
        encoding, sequence = central_view(encoding, sequence, self._test_crops)  # (B, H'), (B, T, H')
        if self.net.action_head is not None:
            if views is not None:
                logits = self.net.action_head(views).softmax(-1).mean(1).clamp_min(1e-12).log()  # (B, C)
            else:
                logits = self.net.action_head(encoding)  # (B, C)
            has_label = labels >= 0
            if has_label.any():
                terms["action_loss"] = F.cross_entropy(
                    logits[has_label], labels[has_label], label_smoothing=self.hparams.label_smoothing
                )
        ids = batch["caption_ids"]
        if self.net.caption_decoder is not None and (ids[:, 1:] != Vocab.pad_id).any():
            video, frames = self.net.caption_input(encoding, sequence, logits, labels)  # (B, H' [+ C]), (B, T, H')
            caption_logits = self.net.caption_decoder(video, ids, frames=frames)  # (B, L-1, V)
            terms["caption_loss"] = F.cross_entropy(
                caption_logits.reshape(-1, caption_logits.shape[-1]), ids[:, 1:].reshape(-1), ignore_index=Vocab.pad_id
            )
        if not terms:
            return None, terms, logits
        loss = terms.get("action_loss", 0.0) + self.hparams.caption_weight * terms.get("caption_loss", 0.0)
        return loss, terms, logits

    def _encode(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-frame sequence (B, T, H'), clip encodings (B, H')); with N test views per clip,
        (B, N, T, H') and (B, N, H')."""
        frames, features = batch.get("frames"), batch.get("features")
        x = frames if frames is not None else features
        if x.ndim == (6 if frames is not None else 4):  # (B, N, T, ...): views of each clip
            b, n = x.shape[:2]
            flat = x.flatten(0, 1)
            motion = batch.get("motion")  # decoded frames' motion input: (B, N, T, ...) like them
            sequence, encoding = self.net.encode(
                frames=flat if frames is not None else None, features=flat if features is not None else None,
                motion=motion.flatten(0, 1) if motion is not None else None,
            )
            return sequence.unflatten(0, (b, n)), encoding.unflatten(0, (b, n))
        return self.net.encode(frames=frames, features=features, motion=batch.get("motion"))

    def _caption(self, encoding: torch.Tensor, sequence: torch.Tensor, logits: torch.Tensor | None) -> list[str]:
        """Captions of the central view of each clip, decoded as the hyperparameters say;
        ``logits`` (B, C) are ``model_step``'s (over all views), for ``caption_from_action``."""
        encoding, sequence = central_view(encoding, sequence, self._test_crops)
        hp = self.hparams
        ids = self.net.caption(encoding, hp.beam_size, hp.max_caption_len, hp.length_penalty, sequence=sequence, logits=logits)
        return [self.vocab.decode(row) for row in ids.tolist()]

    def training_step(self, batch: dict, batch_idx: int):
        self._skipped["train"] += batch["skipped"]
        if not batch["size"]:
            return self._nothing_to_learn()  # every clip in the batch failed to decode
        sequence, encoding = self._encode(batch)
        loss, terms, _ = self.model_step(batch, encoding, sequence)
        if loss is None:
            return self._nothing_to_learn()
        b = batch["size"]
        self.log("train/loss", loss, prog_bar=True, batch_size=b)
        for k, v in terms.items():
            self.log(f"train/{k}", v, batch_size=b)
        return loss

    def _world_size(self) -> int:
        """How many ranks train together (1 when the module runs without a Trainer)."""
        return self._trainer.world_size if self._trainer is not None else 1

    def _nothing_to_learn(self) -> torch.Tensor | None:
        """The step's result for a batch without a loss (all its clips failed to decode, or none
        has a label or caption). Alone, the step is skipped (None). Under DDP every rank must
        run backward, or the others wait forever in the gradient all-reduce: this rank then
        contributes a zero loss that touches every trainable weight (zero gradients)."""
        if self._world_size() <= 1:
            return None
        return sum((p.sum() * 0.0 for p in self.parameters() if p.requires_grad), torch.zeros((), device=self.device))

    def _eval_step(self, batch: dict, stage: Literal["val", "test"]) -> None:
        self._skipped[stage] += batch["skipped"]
        if not batch["size"]:
            return
        sequence, encoding = self._encode(batch)
        _, terms, logits = self.model_step(batch, encoding, sequence)
        b = batch["size"]
        labels = batch["label"]
        has_label = labels >= 0
        # Each term is a mean over its own items in this batch: the action loss over labelled
        # clips, the caption loss over caption tokens. Weighted by those counts, the epoch's
        # values are the same whatever the batch size or number of ranks.
        counts = {"action_loss": int(has_label.sum()), "caption_loss": int((batch["caption_ids"][:, 1:] != Vocab.pad_id).sum())}
        for term, value in terms.items():
            self.eval_losses[stage][term].update(value.detach(), counts[term])
        preds = None
        if logits is not None and has_label.any():
            metrics = self.val_metrics if stage == "val" else self.test_metrics
            confusion = self.val_confusion if stage == "val" else self.test_confusion
            metrics.update(logits[has_label], labels[has_label])
            confusion.update(logits[has_label], labels[has_label])
            self.log_dict({f"{stage}/{k}": m for k, m in metrics.items()}, prog_bar=stage == "val", batch_size=b)
            preds = logits.argmax(-1)
        captions = None
        if self.net.caption_decoder is not None and any(batch["captions"]):
            captions = self._caption(encoding, sequence, logits)
        for j in range(b):
            self._captions[stage].append(
                {
                    "video": batch["video"][j],
                    "label": self.classes[labels[j]] if labels[j] >= 0 else None,
                    "pred": self.classes[preds[j]] if preds is not None else None,
                    "references": batch["captions"][j],
                    "caption": captions[j] if captions is not None else None,
                }
            )

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int) -> list[dict]:
        failed = [{"video": s.video, "error": s.reason} for s in batch["skipped"]]
        if not batch["size"]:
            return failed
        sequence, encoding = self._encode(batch)
        out = [{"video": v} for v in batch["video"]]
        _, _, logits = self.model_step({**batch, "label": torch.full((batch["size"],), -1)}, encoding, sequence)
        if logits is not None:
            for row, p in enumerate(logits.softmax(-1).tolist()):  # the whole distribution: (C,) per clip
                out[row]["probs"] = dict(zip(self.classes, p))
        if self.net.caption_decoder is not None:
            for row, caption in enumerate(self._caption(encoding, sequence, logits)):
                out[row]["caption"] = caption
        return out + failed

    # -- epoch ends ----------------------------------------------------------------------
    def _report_skipped(self, stage: str) -> int:
        """Warn about the clips this rank skipped in the epoch; returns how many."""
        skipped, self._skipped[stage] = self._skipped[stage], []
        if skipped:
            # Each with its reason and manifest line: a missing file is not a decoding failure.
            # Every rank warns: under DDP each skips its own clips, which rank 0 never sees.
            named = "; ".join(str(s) for s in skipped[:3]) + (f"; and {len(skipped) - 3} more" if len(skipped) > 3 else "")
            rank = f"rank {self.global_rank}: " if self._world_size() > 1 else ""
            warnings.warn(f"{rank}{stage} epoch {self.current_epoch}: skipped {len(skipped)} clip(s) that could not be loaded: {named}")
        return len(skipped)

    def on_train_epoch_end(self) -> None:
        self._report_skipped("train")

    # -- resume: a resumed run continues exactly where the interrupted one would have ------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Random-number state as of the end of this epoch: the data order, dropout masks and
        # augmentations of the next epoch are drawn from it (plain tensors: weights_only loads it).
        checkpoint["vidrec_rng"] = state = rng_state()  # this rank's: rank 0's in the file (older readers)
        val_clips = self._validation_fingerprints()
        if val_clips is not None:
            checkpoint["vidrec_val_clips"] = val_clips  # int64 (N,): which clips picked the best epoch
        if _distributed():
            # Under DDP only rank 0 writes the file, but the ranks' states differ (each draws
            # dropout masks and augmentations for its own batches): keep every rank's, so each
            # resumes its own. A collective, so every rank must get here: in Lightning 2.x
            # Trainer.save_checkpoint runs dump_checkpoint (and this hook) on every rank and only
            # the file write is rank 0's; ModelCheckpoint/LastCheckpoint call it on every rank.
            states: list = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(states, state)
            checkpoint["vidrec_rng_ranks"] = states  # list indexed by global rank of rng_state() dicts

    def _validation_fingerprints(self) -> torch.Tensor | None:
        """This fit's validation clips (and a resumed run's earlier ones), fingerprinted once."""
        trainer = self._trainer
        if self._val_clips is None and trainer is not None and trainer.state.fn == "fit":
            records = getattr(trainer.datamodule, "records", {}).get("val")
            if records:
                mine = clip_fingerprints(records)
                earlier = self._selected_on  # a resumed fit: its first part chose on these
                self._val_clips = mine if earlier is None else torch.unique(torch.cat([earlier, mine]))
        return self._val_clips

    def on_test_start(self) -> None:
        datamodule = self.trainer.datamodule
        self._test_crops = int(getattr(datamodule, "test_crops", 1) or 1)
        records = getattr(datamodule, "records", {}).get("test")
        manifest = getattr(datamodule, "manifests", {}).get("test")
        warning = selection_warning(records or [], self._selected_on, manifest)
        if warning:
            rank_zero_warn(warning)

    def on_test_end(self) -> None:
        self._test_crops = 1

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._selected_on = checkpoint.get("vidrec_val_clips")
        trainer = self._trainer  # None under load_from_checkpoint
        self._resumed_rng = _rank_rng_state(checkpoint, warn=trainer is not None and trainer.state.fn == "fit")
        if self._resumed_rng is not None:
            set_rng_state(self._resumed_rng)

    def on_sanity_check_end(self) -> None:
        # The sanity-check validation that starts a resumed fit draws random numbers (its
        # DataLoader's seed) that the uninterrupted run never drew: restore again after it,
        # right before the training loader draws this epoch's order.
        if self._resumed_rng is not None and self.trainer.state.fn == "fit":
            set_rng_state(self._resumed_rng)

    def on_train_start(self) -> None:
        self._resumed_rng = None
        self.on_fit_start_schedule()

    def on_fit_start_schedule(self) -> None:
        # Resuming with a larger max_epochs: the default cosine schedule was built for the old
        # length (it would reach 0 and climb again). Stretch it to the new one, continuing
        # from the learning rate the closed form gives at this epoch.
        if self.scheduler_factory is not None or self.trainer.max_epochs is None or self.trainer.max_epochs < 1:
            return
        for config in self.trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR) and scheduler.T_max != self.trainer.max_epochs:
                scheduler.T_max = self.trainer.max_epochs
                progress = math.cos(math.pi * scheduler.last_epoch / scheduler.T_max)
                for group, base in zip(scheduler.optimizer.param_groups, scheduler.base_lrs):
                    group["lr"] = scheduler.eta_min + (base - scheduler.eta_min) * (1 + progress) / 2
                rank_zero_info(f"vidrec: cosine schedule stretched to {self.trainer.max_epochs} epochs on resume")

    def _eval_epoch_end(self, stage: Literal["val", "test"]) -> None:
        skipped = self._report_skipped(stage)
        samples, self._captions[stage] = self._captions[stage], []
        if self.trainer.sanity_checking:
            # Lightning resets logged metrics after the sanity check, but not this one: without
            # the reset its batches would be counted again in epoch 0's confusion matrix.
            (self.val_confusion if stage == "val" else self.test_confusion).reset()
            for metric in self.eval_losses[stage].values():  # the same for the loss means
                metric.reset()
            return
        scored = [s for s in samples if s["caption"] is not None and s["references"]]
        if self._world_size() > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            # Corpus BLEU/CIDEr are not averages of per-rank scores, and a rank holding no
            # captioned clip would skip the synced log the others wait in: every rank scores
            # all ranks' captions (the same numbers everywhere).
            gathered: list = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, scored)
            scored = [s for part in gathered for s in part]
        if scored:
            from vidrec.training.caption_metrics import caption_scores

            # METEOR starts a Java process (seconds): on the test set only.
            scores = caption_scores(
                {str(i): s["references"] for i, s in enumerate(scored)},
                {str(i): s["caption"] for i, s in enumerate(scored)},
                meteor=stage == "test",
            )
            self.log_dict({f"{stage}/{k}": v for k, v in scores.items()})  # already over every rank's captions
        self._log_eval_losses(stage)
        confusion = self.val_confusion if stage == "val" else self.test_confusion
        matrix = None
        # Under DDP compute() is a collective: every rank joins, even one whose clips had no labels.
        if self.classes and (confusion.update_count or self._world_size() > 1):
            matrix = confusion.compute().cpu()
            confusion.reset()
            if not matrix.sum():
                matrix = None  # no labelled clip on any rank
        if matrix is not None:
            self._log_confusion(stage, matrix)
            # The matrix holds every rank's clips (it is synced), so every rank logs the same value.
            mean_class = mean_class_accuracy(matrix)
            if mean_class is not None:
                self.log(f"{stage}/mean_class_acc", mean_class)
        if stage == "test" and (matrix is not None or scored):
            # The scores are over the clips that loaded: say beside them how many did not. (Both
            # conditions are the same on every rank: the matrix is synced, the captions gathered.)
            self.log("test/clips_skipped", float(skipped), reduce_fx="sum", sync_dist=self._world_size() > 1)
        if stage == "test" and matrix is None and not scored:
            rank_zero_warn(
                "test: no test clip has a label or reference captions, so there is nothing to score "
                "(an unlabelled list such as Kinetics' official test.csv); infer.py or train.py predict "
                "gives each clip's prediction"
            )
        if stage == "test" and matrix is not None:
            # Per-class top-1 = right / clips of the class, from the matrix. Only classes with test
            # clips: one without has no accuracy, and a 0.0 would read as "all wrong". "/" in a
            # class name becomes "-" in the key (metric_names).
            per_class, clips = per_class_top1(matrix)  # (C,), (C,)
            self.log_dict({class_top1_key(c): per_class[i] for i, c in enumerate(self.classes) if clips[i] > 0})
        if samples:
            self._log_samples(stage, samples[: self.hparams.val_samples])

    def _log_eval_losses(self, stage: str) -> None:
        """``{stage}/action_loss`` (mean over labelled clips), ``{stage}/caption_loss`` (mean over
        caption tokens), both over every rank's, and ``{stage}/loss`` = action + ``caption_weight``
        x caption, as training's."""
        means = {}
        for term, metric in self.eval_losses[stage].items():
            if self._world_size() <= 1 and not metric.update_called:
                continue  # no clip had this term (compute would warn and give nan)
            value = metric.compute()  # under DDP a collective: every rank gets here, updated or not
            metric.reset()
            if not torch.isnan(value):  # nan: no clip on any rank had this term
                means[term] = value
        if not means:
            return
        self.log_dict({f"{stage}/{k}": v for k, v in means.items()})
        zero = torch.zeros((), device=self.device)
        loss = means.get("action_loss", zero) + self.hparams.caption_weight * means.get("caption_loss", zero)
        self.log(f"{stage}/loss", loss, prog_bar=stage == "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def _log_confusion(self, stage: str, matrix: torch.Tensor) -> None:
        from vidrec.training import loggers

        loggers.log_confusion(self.logger, f"{stage}/confusion_matrix", matrix, self.classes, self.global_step)

    def _log_samples(self, stage: str, samples: list[dict]) -> None:
        from vidrec.training import loggers

        loggers.log_samples(self.logger, f"{stage}/samples", samples, self.global_step)

    # -- optimisation --------------------------------------------------------------------
    def configure_optimizers(self):
        # Only trainable parameters: a frozen backbone gets no optimizer state at all.
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params)
        if self.scheduler_factory is not None:
            scheduler = self.scheduler_factory(optimizer)
        else:
            epochs = max(int(self.trainer.max_epochs or 1), 1) if self._trainer is not None else 1
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def setup(self, stage: str) -> None:
        if stage == "fit":
            # Here, not in on_fit_start: a ModelCheckpoint's saved state is keyed by its monitor,
            # and a resumed fit restores it after setup and before on_fit_start. Switched later,
            # the key would not match and the run would forget its best checkpoint.
            lacks = [what for what, head in (("no action head: no labels", self.net.action_head),
                                             ("no caption decoder: no captions", self.net.caption_decoder)) if head is None]
            monitor_what_is_logged(self.trainer, self.validation_metric_keys(), "; ".join(lacks) or "no such metric")
        # The datamodule has set up its clip datasets; with a cache, serve them as features.
        datamodule = self.trainer.datamodule
        if datamodule is not None:
            from vidrec.training.serve_features import serve_cached_features

            serve_cached_features(self.trainer, self.net.backbone, datamodule, stage)

    def validation_metric_keys(self) -> set[str]:
        """Every ``val/...`` key this model logs, given its heads (clips without labels or
        captions in the val list can still leave some unlogged)."""
        keys = {"loss"}
        if self.net.action_head is not None:
            keys |= {*self.val_metrics.keys(), "mean_class_acc", "action_loss"}
        if self.net.caption_decoder is not None:
            keys |= {*CORPUS_SCORES, "caption_loss"}
        return {f"val/{k}" for k in keys}

    def on_fit_start(self) -> None:
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in self.parameters() if not p.requires_grad)
        rank_zero_info(f"vidrec: {trainable / 1e6:.2f}M trainable parameters, {frozen / 1e6:.2f}M frozen (backbone)")

"""VidRecModule: which loss terms a batch produces and their exact values, logged metrics,
and caption scores (BLEU/ROUGE/CIDEr, METEOR with or without Java)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vidrec.data.clips import SkippedClip
from vidrec.data.datasets import collate_clips
from vidrec.data.vocab import Vocab
from vidrec.training.caption_metrics import caption_scores
from vidrec.training.lit_module import VidRecModule

CLASSES = ["jump", "run", "walk"]
SENTENCES = ["a man runs", "a woman walks to the left", "someone jumps", "a man walks"]
T, D = 3, 576  # frames, mobilenet_v3_small feature size (features are fed directly: no CNN runs)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def vocab() -> Vocab:
    return Vocab.build(SENTENCES)


def _module(vocab: Vocab | None, classes=CLASSES, **kw) -> VidRecModule:
    torch.manual_seed(0)
    kw = {"hidden_size": 8, "caption_embed_dim": 4, "caption_hidden_size": 8, **kw}
    module = VidRecModule(
        classes=classes, vocab=vocab.itos if vocab else None, backbone="mobilenet_v3_small", weights="none", **kw
    )
    return module.eval()  # dropout off: losses are deterministic and checkable


@pytest.fixture(scope="module")
def module(vocab) -> VidRecModule:
    return _module(vocab)


def _item(i: int, vocab: Vocab, label: int | None, caption: str | None) -> dict:
    g = torch.Generator().manual_seed(i)
    return {
        "features": torch.randn(T, D, generator=g),
        "label": -1 if label is None else label,
        "captions": [caption] if caption else [],
        "caption_ids": vocab.encode(caption) if caption else [],
        "video": f"clip{i}.mp4",
        "index": i,
    }


def _batch(vocab: Vocab, rows: list[tuple[int | None, str | None]]) -> dict:
    return collate_clips([_item(i, vocab, label, cap) for i, (label, cap) in enumerate(rows)])


def _manual_terms(module: VidRecModule, batch: dict, label_smoothing: float = 0.0) -> dict[str, torch.Tensor]:
    """The losses written out by hand from the network's outputs."""
    with torch.no_grad():
        _, enc = module.net.encode(features=batch["features"])
        out = {}
        labels = batch["label"]
        keep = labels >= 0
        if keep.any():
            logits = module.net.action_head(enc)
            out["action_loss"] = F.cross_entropy(logits[keep], labels[keep], label_smoothing=label_smoothing)
        ids = batch["caption_ids"]
        if (ids[:, 1:] != 0).any():
            logp = module.net.caption_decoder(enc, ids).log_softmax(-1)  # (B, L-1, V)
            nll = []
            for b in range(ids.shape[0]):
                for t in range(ids.shape[1] - 1):
                    target = int(ids[b, t + 1])
                    if target != Vocab.pad_id:
                        nll.append(-logp[b, t, target])
            out["caption_loss"] = torch.stack(nll).mean()
    return out


def _model_step(module, batch):
    """``module.model_step`` on the batch's clip encodings: (loss, terms, logits)."""
    with torch.no_grad():
        _, enc = module.net.encode(features=batch["features"])
        return module.model_step(batch, enc)


def test_only_labels_gives_only_action_loss(module, vocab):
    batch = _batch(vocab, [(0, None), (2, None), (1, None)])
    loss, terms, logits = _model_step(module, batch)
    assert set(terms) == {"action_loss"}
    assert logits.shape == (3, len(CLASSES))
    manual = _manual_terms(module, batch)
    torch.testing.assert_close(loss, manual["action_loss"])
    with torch.no_grad():
        torch.testing.assert_close(module.training_step(batch, 0), manual["action_loss"])


def test_only_captions_gives_only_caption_loss(module, vocab):
    batch = _batch(vocab, [(None, SENTENCES[0]), (None, SENTENCES[1])])
    loss, terms, _ = _model_step(module, batch)
    assert set(terms) == {"caption_loss"}
    torch.testing.assert_close(loss, _manual_terms(module, batch)["caption_loss"])


def test_mixed_batch_uses_each_clip_for_what_it_has(module, vocab):
    rows = [(0, SENTENCES[0]), (None, SENTENCES[1]), (2, None), (1, SENTENCES[2])]
    batch = _batch(vocab, rows)
    loss, terms, _ = _model_step(module, batch)
    assert set(terms) == {"action_loss", "caption_loss"}
    manual = _manual_terms(module, batch)
    torch.testing.assert_close(terms["action_loss"], manual["action_loss"])
    torch.testing.assert_close(terms["caption_loss"], manual["caption_loss"])
    torch.testing.assert_close(loss, manual["action_loss"] + manual["caption_loss"])
    # the unlabelled clip does not pull the action loss: same value without it
    only_labelled = _batch(vocab, [rows[0], rows[2], rows[3]])
    only_labelled["features"] = batch["features"][[0, 2, 3]]
    torch.testing.assert_close(_manual_terms(module, only_labelled)["action_loss"], terms["action_loss"])


def test_caption_padding_is_ignored(module, vocab):
    short, long = SENTENCES[2], SENTENCES[1]  # 2 and 6 words: the short one gets 4 pads
    batch = _batch(vocab, [(None, short), (None, long)])
    assert (batch["caption_ids"][0] == Vocab.pad_id).sum() == 4
    _, terms, _ = _model_step(module, batch)
    torch.testing.assert_close(terms["caption_loss"], _manual_terms(module, batch)["caption_loss"])
    # more trailing padding changes nothing
    wider = dict(batch)
    wider["caption_ids"] = F.pad(batch["caption_ids"], (0, 5), value=Vocab.pad_id)
    _, terms_wider, _ = _model_step(module, wider)
    torch.testing.assert_close(terms_wider["caption_loss"], terms["caption_loss"])


def test_label_smoothing_changes_the_action_loss(module, vocab):
    smooth = _module(vocab, label_smoothing=0.2)
    smooth.load_state_dict(module.state_dict())
    batch = _batch(vocab, [(0, None), (1, None), (2, None)])
    plain, _, _ = _model_step(module, batch)
    smoothed, _, _ = _model_step(smooth, batch)
    assert not torch.isclose(plain, smoothed)
    torch.testing.assert_close(smoothed, _manual_terms(smooth, batch, label_smoothing=0.2)["action_loss"])


def test_caption_weight_scales_the_caption_term(module, vocab):
    weighted = _module(vocab, caption_weight=0.25)
    weighted.load_state_dict(module.state_dict())
    batch = _batch(vocab, [(0, SENTENCES[0]), (1, SENTENCES[3])])
    loss1, terms1, _ = _model_step(module, batch)
    loss2, terms2, _ = _model_step(weighted, batch)
    torch.testing.assert_close(terms1["caption_loss"], terms2["caption_loss"])
    torch.testing.assert_close(loss2, terms1["action_loss"] + 0.25 * terms1["caption_loss"])
    assert loss2 < loss1


def test_batch_whose_clips_all_failed_is_skipped(module):
    batch = collate_clips(
        [
            {"skipped": SkippedClip("a.mp4", "cannot decode"), "index": 0},
            {"skipped": SkippedClip("b.mp4", "cannot decode"), "index": 1},
        ]
    )
    assert batch["size"] == 0
    assert [str(s) for s in batch["skipped"]] == ["a.mp4: cannot decode", "b.mp4: cannot decode"]
    assert module.training_step(batch, 0) is None
    # counted for the end-of-epoch warning, which names the clips ...
    with pytest.warns(UserWarning, match=r"train epoch 0: skipped 2 clip\(s\) that could not be loaded: a\.mp4: cannot decode; b\.mp4: cannot decode$"):
        module.on_train_epoch_end()
    # ... once: the next epoch starts from zero
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module.on_train_epoch_end()


def test_predict_step_reports_skipped_clips_with_their_reason(module, vocab):
    good = _item(0, vocab, 0, None)
    batch = collate_clips([good, {"skipped": SkippedClip("bad.mp4", "cannot decode: moov atom not found"), "index": 1}])
    with torch.no_grad():
        out = module.predict_step(batch, 0)
    assert len(out) == 2
    assert out[0]["video"] == "clip0.mp4" and "error" not in out[0]
    probs = out[0]["probs"]  # the whole class distribution
    assert list(probs) == CLASSES and sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert isinstance(out[0]["caption"], str)
    assert out[1] == {"video": "bad.mp4", "error": "cannot decode: moov atom not found"}


def test_module_without_captions_or_classes(vocab):
    labels_only = _module(None)
    assert labels_only.net.caption_decoder is None
    batch = _batch(vocab, [(0, None), (1, None)])
    loss, terms, _ = _model_step(labels_only, batch)
    assert set(terms) == {"action_loss"}

    captions_only = _module(vocab, classes=None)
    assert captions_only.net.action_head is None
    batch = _batch(vocab, [(None, SENTENCES[0])])
    _, terms, logits = _model_step(captions_only, batch)
    assert set(terms) == {"caption_loss"} and logits is None

    with pytest.raises(ValueError, match="nothing to learn"):
        VidRecModule(classes=[], vocab=None, backbone="mobilenet_v3_small", weights="none")


# -- metrics logged by a real training run ---------------------------------------------


def test_validation_epoch_logs_accuracy_metrics(tiny_checkpoint, tiny_dataset, read_metrics):
    metrics_csv = tiny_checkpoint.parents[1] / "metrics.csv"
    assert metrics_csv.is_file()
    rows = read_metrics(metrics_csv)
    val_rows = [r for r in rows if r.get("val/top1")]
    assert len(val_rows) == 2  # one per epoch (sanity check is not logged)
    for r in val_rows:
        top1, top5, mca = float(r["val/top1"]), float(r["val/top5"]), float(r["val/mean_class_acc"])
        assert 0.0 <= top1 <= top5 <= 1.0
        assert 0.0 <= mca <= 1.0
        assert math.isfinite(float(r["val/loss"]))
        assert r.get("val/bleu4") not in (None, "")  # caption scores on validation too
    assert "val/meteor" not in rows[0]  # METEOR (Java) runs on the test set only
    train_rows = [r for r in rows if r.get("train/loss")]
    assert train_rows and all(r["train/action_loss"] and r["train/caption_loss"] for r in train_rows)

    # The logged numbers are the real accuracy of the final weights on the val set.
    from vidrec.data.datamodule import VideoDataModule

    model = VidRecModule.load_from_checkpoint(tiny_checkpoint, map_location="cpu").eval()
    dm_hp = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)["datamodule_hyper_parameters"]
    dm = VideoDataModule(
        **{k: v for k, v in dm_hp.items() if not k.startswith("_") and k != "num_workers"},
        num_workers=0,
        normalization=model.net.backbone.normalization,
    )
    assert dm.classes == model.classes  # the training manifest gives the class list the model saved
    dm.setup("validate")
    correct = top5 = n = 0
    per_class: dict[int, list[bool]] = {}
    with torch.no_grad():
        for batch in dm.val_dataloader():
            logits = model.net(frames=batch["frames"])
            labels = batch["label"]
            hit = logits.argmax(-1) == labels
            correct += int(hit.sum())
            top5 += int((logits.topk(5, dim=-1).indices == labels[:, None]).any(-1).sum())
            n += len(labels)
            for y, h in zip(labels.tolist(), hit.tolist()):
                per_class.setdefault(y, []).append(h)
    # The validation that ran on exactly these weights: the one logged at the checkpoint's
    # last optimizer step (its "epoch" field counts finished epochs, so match on the step).
    step = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)["global_step"]
    last = next(r for r in val_rows if int(r["step"]) == step - 1)
    assert float(last["val/top1"]) == pytest.approx(correct / n, abs=1e-6)
    assert float(last["val/top5"]) == pytest.approx(top5 / n, abs=1e-6)
    mean_class = sum(sum(v) / len(v) for v in per_class.values()) / len(per_class)  # over classes with val clips
    assert float(last["val/mean_class_acc"]) == pytest.approx(mean_class, abs=1e-6)


def test_confusion_matrix_counts_each_val_clip_once(tmp_path, tiny_dataset, debug_args, read_metrics):
    # The sanity check runs 2 val batches before training; they must not be counted in
    # epoch 0's confusion matrix (torchmetrics state that Lightning does not reset for us).
    import pytorch_lightning as pl

    from vidrec.training.cli import cli_main

    class ConfusionAtEpochEnd(pl.Callback):
        """Reads the module's val confusion matrix as it stands when the epoch ends
        (callbacks' epoch-end hooks run before the module's, which logs and resets it)."""

        def __init__(self):
            self.matrices: list[torch.Tensor] = []
            self.loss_clips: list[float] = []  # clips in the val/action_loss mean

        def on_validation_epoch_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                self.matrices.append(pl_module.val_confusion.compute().cpu().clone())
                self.loss_clips.append(float(pl_module.eval_losses["val"]["action_loss"].weight))

    cli = cli_main(
        [
            *debug_args(tmp_path, tiny_dataset),
            "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "1",
            "--trainer.num_sanity_val_steps", "2",
        ],
        run=False,
    )
    spy = ConfusionAtEpochEnd()
    cli.trainer.callbacks.append(spy)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.trainer.num_sanity_val_steps == 2 and cli.trainer.num_val_batches[0] >= 2  # the sanity check ran

    n_val = len(cli.datamodule.records["val"])
    assert len(spy.matrices) == 1
    matrix = spy.matrices[0]
    assert matrix.shape == (len(cli.model.classes),) * 2
    assert int(matrix.sum()) == n_val
    assert spy.loss_clips == [n_val]  # the loss means too: the sanity batches are not in them
    # rows are true classes: one val clip per class in the tiny dataset
    labels = [cli.datamodule.class_to_idx[r.label] for r in cli.datamodule.records["val"]]
    assert matrix.sum(1).tolist() == [labels.count(k) for k in range(len(cli.model.classes))]
    # and it agrees with the logged accuracy
    rows = read_metrics(Path(cli.trainer.logger.log_dir) / "metrics.csv")
    top1 = [float(r["val/top1"]) for r in rows if r.get("val/top1")]
    assert len(top1) == 1
    assert top1[0] == pytest.approx(float(matrix.diag().sum()) / n_val, abs=1e-6)
    # the module reset it after logging: the next validation starts from zero
    assert cli.model.val_confusion.update_count == 0


# -- caption scores ----------------------------------------------------------------------


REFS = {"0": ["a red circle grows bigger", "the red circle is getting larger"], "1": ["a blue square moves to the left"]}


def test_bleu4_is_one_for_identical_captions_and_lower_for_wrong():
    same = caption_scores(REFS, {"0": "a red circle grows bigger", "1": "a blue square moves to the left"}, meteor=False)
    assert same["bleu4"] == pytest.approx(1.0, abs=1e-6)
    assert same["bleu1"] == pytest.approx(1.0, abs=1e-6)
    assert same["rouge_l"] == pytest.approx(1.0, abs=1e-6)
    assert "meteor" not in same

    wrong = caption_scores(REFS, {"0": "a green triangle shrinks fast", "1": "a blue square moves to the right"}, meteor=False)
    assert wrong["bleu4"] < 0.9 * same["bleu4"]
    assert wrong["rouge_l"] < same["rouge_l"]
    assert wrong["cider"] < same["cider"]
    for k in ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l"):
        assert 0.0 <= wrong[k] <= 1.0


def test_caption_scores_tokenise_and_survive_empty_hypotheses():
    # case and punctuation do not matter (tokenised like the COCO tools)
    shouting = caption_scores(REFS, {"0": "A RED circle, grows bigger!", "1": "A blue square moves to the left."}, meteor=False)
    assert shouting["bleu4"] == pytest.approx(1.0, abs=1e-6)
    empty = caption_scores(REFS, {"0": "", "1": ""}, meteor=False)
    assert empty["bleu1"] == pytest.approx(0.0, abs=1e-6)
    # clips without references are not scored; nothing to score gives {}
    assert caption_scores({"0": []}, {"0": "a red circle"}) == {}


@pytest.mark.slow  # METEOR starts a Java process that loads its paraphrase tables (~5-20 s)
def test_meteor_with_java():
    import shutil

    if shutil.which("java") is None:
        pytest.skip("java is not installed")
    # One exact caption and one wrong one: a working METEOR lands strictly in between.
    hyps = {"0": "a red circle grows bigger", "1": "nothing at all here"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "METEOR skipped" warning
        scores = caption_scores(REFS, hyps, meteor=True)
    assert 0.2 < scores["meteor"] < 0.9
    assert scores["bleu1"] > 0


def test_meteor_skipped_with_a_warning_without_java(tmp_path, monkeypatch):
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.warns(UserWarning, match="METEOR skipped"):
        scores = caption_scores(REFS, {"0": "a red circle grows bigger", "1": "a blue square"}, meteor=True)
    assert "meteor" not in scores
    assert scores["bleu1"] > 0 and "cider" in scores  # the others are still there


def test_each_rank_resumes_its_own_random_state(monkeypatch):
    """``vidrec_rng_ranks`` (one state per rank, written under DDP) gives rank r state r; an older
    checkpoint's single ``vidrec_rng`` still loads; another world size falls back with a warning."""
    from vidrec.training import lit_module
    from vidrec.training.lit_module import _rank_rng_state

    def world(rank: int, size: int) -> None:
        monkeypatch.setattr(lit_module, "_distributed", lambda: size > 1)
        monkeypatch.setattr(torch.distributed, "get_rank", lambda: rank)
        monkeypatch.setattr(torch.distributed, "get_world_size", lambda: size)

    s0, s1 = {"rank": 0}, {"rank": 1}
    new, old = {"vidrec_rng": s0, "vidrec_rng_ranks": [s0, s1]}, {"vidrec_rng": s0}
    world(1, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the matching world size: no warning
        assert _rank_rng_state(new) is s1
    world(0, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _rank_rng_state(old) is s0  # an older (or one-process) checkpoint, one process
    assert _rank_rng_state({}) is None
    world(2, 3)  # more ranks than states: the extra rank takes rank 0's
    with pytest.warns(UserWarning, match="random state of 2 process"):
        assert _rank_rng_state(new) is s0
    world(1, 2)  # an older checkpoint under DDP: every rank takes its one state
    with pytest.warns(UserWarning, match="random state of 1 process"):
        assert _rank_rng_state(old) is s0
    world(0, 1)  # a DDP checkpoint in one process: rank 0's; no warning where nothing resumes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _rank_rng_state(new, warn=False) is s0


def test_class_top1_only_for_classes_with_test_clips_and_slash_safe(tmp_path, vocab, read_metrics):
    # MSR-VTT-like class names: "sports/actions" would nest the metric key a level deeper in
    # W&B; a class with no test clips would be logged as 0.0 ("all wrong") although nothing was scored.
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    from vidrec.training.metric_names import class_top1_key

    classes = ["jump", "run", "sports/actions"]
    module = _module(vocab, classes=classes)
    clips = [(0, "someone jumps"), (2, "a man runs"), (2, None)]  # no "run" clip
    items = [_item(i, vocab, label, cap) for i, (label, cap) in enumerate(clips)]
    batches = torch.utils.data.DataLoader(items, batch_size=3, collate_fn=collate_clips)
    trainer = pl.Trainer(
        default_root_dir=tmp_path, logger=CSVLogger(tmp_path), accelerator="cpu", devices=1,
        enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.test(module, dataloaders=batches)
    rows = read_metrics(Path(trainer.logger.log_dir) / "metrics.csv")
    logged = {k for r in rows for k, v in r.items() if k.startswith("test/class_top1/") and v not in (None, "")}
    assert logged == {"test/class_top1/jump", "test/class_top1/sports-actions"}
    # each is right / clips of its class: weighted by the clips (1 jump, 2 sports), they add up to top-1
    values = {k: float(v) for r in rows for k, v in r.items() if v not in (None, "")}
    right = values["test/class_top1/jump"] * 1 + values["test/class_top1/sports-actions"] * 2
    assert right == pytest.approx(values["test/top1"] * 3)
    assert class_top1_key("sports/actions") == "test/class_top1/sports-actions"
    assert class_top1_key("news/events/politics") == "test/class_top1/news-events-politics"


def test_top5_is_not_merged_into_top1_when_the_first_batch_is_all_right(vocab):
    """torchmetrics merges metrics whose states match after the first update (compute groups):
    a first test batch right at top-1 (a test list sorted by class, an easy first class) made
    top5 report top-1 accuracy for the whole epoch (merged with the macro accuracy the
    collection then held; found by a user run on a class-sorted UCF101 test list)."""
    module = _module(vocab, classes=[f"c{i}" for i in range(8)])
    first = torch.arange(8)
    right = F.one_hot(first, 8).float() * 5  # every clip right at top-1
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(64, 8, generator=g), torch.randint(0, 8, (64,), generator=g)
    for metrics in (module.val_metrics, module.test_metrics):
        metrics.update(right, first)
        metrics.update(logits, labels)
        got = {k: float(v) for k, v in metrics.compute().items()}
        all_logits, all_labels = torch.cat([right, logits]), torch.cat([first, labels])
        top1 = float((all_logits.argmax(-1) == all_labels).float().mean())
        top5 = float((all_logits.topk(5, -1).indices == all_labels[:, None]).any(-1).float().mean())
        assert top5 > top1
        assert got["top1"] == pytest.approx(top1)
        assert got["top5"] == pytest.approx(top5)


def test_epoch_loss_terms_are_means_over_the_clips_each_was_computed_on(vocab):
    """A mixed manifest (clips with only a label, only captions): each batch's action loss is a
    mean over its labelled clips, its caption loss over its caption tokens. Weighted by the whole
    batch, a batch with one labelled clip of four counted that clip four times in val/action_loss."""
    import pytorch_lightning as pl

    module = _module(vocab)
    rows = [(0, None), (None, "a man runs"), (None, "someone jumps"), (None, "a man walks"),  # 1 labelled of 4
            (1, "a woman walks to the left"), (2, None), (0, None), (1, None)]  # 4 labelled, 1 captioned
    items = [_item(i, vocab, label, cap) for i, (label, cap) in enumerate(rows)]
    batches = torch.utils.data.DataLoader(items, batch_size=4, collate_fn=collate_clips)
    trainer = pl.Trainer(logger=False, accelerator="cpu", devices=1, enable_progress_bar=False, enable_model_summary=False)
    logged = trainer.validate(module, dataloaders=batches, verbose=False)[0]
    with torch.no_grad():  # per clip, by hand
        _, enc = module.net.encode(features=torch.stack([it["features"] for it in items]))
        labels = torch.tensor([-1 if label is None else label for label, _ in rows])
        ce = F.cross_entropy(module.net.action_head(enc[labels >= 0]), labels[labels >= 0], reduction="none")
    assert logged["val/action_loss"] == pytest.approx(float(ce.mean()), rel=1e-5)
    # the caption term: a mean over caption tokens, so the batches' means weighted by their tokens
    caption, tokens = [], []
    for k in (0, 4):
        batch = collate_clips(items[k : k + 4])
        caption.append(float(_manual_terms(module, batch)["caption_loss"]))
        tokens.append(int((batch["caption_ids"][:, 1:] != Vocab.pad_id).sum()))
    assert logged["val/caption_loss"] == pytest.approx(sum(c * n for c, n in zip(caption, tokens)) / sum(tokens), rel=1e-5)
    assert logged["val/loss"] == pytest.approx(
        logged["val/action_loss"] + module.hparams.caption_weight * logged["val/caption_loss"], rel=1e-6
    )


def test_testing_clips_without_labels_or_captions_says_there_is_nothing_to_score(vocab):
    """An unlabelled test list (Kinetics' official test.csv) used to end with no numbers and no word."""
    import warnings

    import pytorch_lightning as pl

    module = _module(vocab)
    unlabelled = torch.utils.data.DataLoader([_item(i, vocab, None, None) for i in range(4)], batch_size=2, collate_fn=collate_clips)
    labelled = torch.utils.data.DataLoader([_item(i, vocab, i % 3, None) for i in range(4)], batch_size=2, collate_fn=collate_clips)
    trainer = pl.Trainer(logger=False, accelerator="cpu", devices=1, enable_progress_bar=False, enable_model_summary=False)
    with pytest.warns(UserWarning, match="nothing to score"):
        assert trainer.test(module, dataloaders=unlabelled, verbose=False) == [{}]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = trainer.test(module, dataloaders=labelled, verbose=False)[0]
    assert "test/top1" in scores and not [w for w in caught if "nothing to score" in str(w.message)]


def test_test_scores_say_how_many_clips_were_skipped(tmp_path, vocab, read_metrics):
    """Test scores are over the clips that loaded: test/clips_skipped sits beside them."""
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    module = _module(vocab, classes=["jump", "run"])
    items = [_item(0, vocab, 0, "someone jumps"), {"skipped": SkippedClip("gone.mp4", "file not found", "test.jsonl:2"), "index": 1},
             _item(2, vocab, 1, "a man runs")]
    batches = torch.utils.data.DataLoader(items, batch_size=3, collate_fn=collate_clips)
    trainer = pl.Trainer(default_root_dir=tmp_path, logger=CSVLogger(tmp_path), accelerator="cpu", devices=1,
                         enable_progress_bar=False, enable_model_summary=False)
    with pytest.warns(UserWarning, match=r"test epoch 0: skipped 1 clip\(s\) that could not be loaded: gone\.mp4: file not found \(test\.jsonl:2\)"):
        (scores,) = trainer.test(module, dataloaders=batches)
    assert scores["test/clips_skipped"] == 1.0
    rows = read_metrics(Path(trainer.logger.log_dir) / "metrics.csv")
    assert [float(r["test/clips_skipped"]) for r in rows if r.get("test/clips_skipped")] == [1.0]

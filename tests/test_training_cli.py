"""The training command line end to end: `train.py fit/test` as a real process, the
swappable parts (temporal cell, loggers), class/vocab linking, and bad videos in training."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vidrec.data.manifest import ClipRecord, read_manifest, write_classes, write_manifest
from vidrec.data.vocab import Vocab
from vidrec.training.metric_names import class_top1_key

REPO = Path(__file__).resolve().parents[1]
DEBUG = REPO / "configs" / "debug.yaml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _env(**extra) -> dict[str, str]:
    env = dict(os.environ)
    # one intra-op thread: the models are tiny, and threads fight each other on a busy CI box
    env.update({"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **extra})
    return env


def _train_py(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"train.py {args[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc


def _last(rows: list[dict[str, str]], key: str) -> float:
    values = [r[key] for r in rows if r.get(key) not in (None, "")]
    assert values, f"{key} was never logged"
    return float(values[-1])


# -- fit and test as real processes ------------------------------------------------------


@pytest.fixture(scope="module")
def corrupt_train(tiny_dataset, tmp_path_factory) -> Path:
    """The tiny train split plus one clip whose file is not a video."""
    folder = tmp_path_factory.mktemp("with_corrupt")
    bad = folder / "broken_clip_0001.mp4"
    bad.write_bytes(os.urandom(4096))
    records = read_manifest(tiny_dataset / "train.jsonl")
    records.insert(1, ClipRecord(video=str(bad), label=records[0].label, captions=["a broken clip"]))
    return write_manifest(folder / "train.jsonl", records)


@pytest.fixture(scope="module")
def fit_process(tiny_dataset, corrupt_train, tmp_path_factory, debug_args) -> tuple[Path, subprocess.CompletedProcess]:
    """`python train.py fit --config configs/debug.yaml ...` on a train split with a corrupt video."""
    out = tmp_path_factory.mktemp("fit_process")
    proc = _train_py(["fit", *debug_args(out, tiny_dataset, corrupt_train)], cwd=out)
    return out, proc


def test_fit_process_writes_checkpoints(fit_process, corrupt_train, tiny_dataset, read_metrics):
    out, _ = fit_process
    last = sorted(out.rglob("last.ckpt"))
    best = sorted(out.rglob("best-epoch=*.ckpt"))
    assert len(last) == 1 and len(best) == 1
    ckpt = torch.load(last[0], map_location="cpu", weights_only=False)
    # (not asserting ckpt["epoch"] == 1: since Lightning 2.6, save_last only rewrites last.ckpt
    # when a top-k checkpoint is saved at the same step, i.e. when val/top1 improved)
    assert any(k.startswith("net.temporal.") for k in ckpt["state_dict"])
    assert (last[0].parents[1] / "config.yaml").is_file()
    # classes are linked from the datamodule: classes.txt is not beside this train manifest,
    # so they are the sorted training labels
    hp = ckpt["hyper_parameters"]
    labels = sorted({r.label for r in read_manifest(corrupt_train)})
    assert hp["classes"] == labels
    captions = [c for r in read_manifest(corrupt_train) for c in r.captions]
    assert hp["vocab"] == Vocab.build(captions).itos
    # the datamodule's settings travel with the checkpoint too (inference needs them)
    import yaml

    data_cfg = yaml.safe_load(DEBUG.read_text())["data"]
    assert ckpt["datamodule_hyper_parameters"]["num_frames"] == data_cfg["num_frames"]
    assert ckpt["datamodule_hyper_parameters"]["frame_size"] == data_cfg["frame_size"]
    metrics = read_metrics(last[0].parents[1] / "metrics.csv")
    assert 0.0 <= _last(metrics, "val/top1") <= 1.0
    assert sorted({int(r["epoch"]) for r in metrics if r.get("val/top1")}) == [0, 1]  # 2 epochs ran


def test_corrupt_training_video_is_skipped_with_a_warning(fit_process, corrupt_train):
    out, proc = fit_process
    assert "broken_clip_0001.mp4" in proc.stderr
    warned = [line for line in proc.stderr.splitlines() if "broken_clip_0001.mp4" in line]
    assert any("skip" in line.lower() for line in warned), warned
    # and each epoch ends with a count of what was skipped, naming the clip
    # with its reason and its manifest line (the corrupt clip is line 2 of its train.jsonl)
    summaries = [line for line in warned if "skipped 1 clip(s) that could not be loaded" in line]
    assert all(f"({corrupt_train}:2)" in line and "cannot open video" in line for line in summaries), summaries
    assert {line.split("train epoch ")[1].split(":")[0] for line in summaries} == {"0", "1"}, warned
    assert sorted(out.rglob("last.ckpt"))  # and training went on to the end


@pytest.mark.slow  # a second process, and METEOR starts Java
def test_test_subcommand_logs_test_metrics_and_caption_scores(
    fit_process, corrupt_train, tiny_dataset, tmp_path, debug_args, read_metrics
):
    out, _ = fit_process
    ckpt = sorted(out.rglob("last.ckpt"))[0]
    args = [
        "test",
        # the same data config as in training: classes and vocabulary come from the train manifest
        *debug_args(tmp_path, tiny_dataset, corrupt_train),
        "--data.test_manifest", str(tiny_dataset / "test.jsonl"),
        "--ckpt_path", str(ckpt),
    ]
    _train_py(args, cwd=tmp_path)
    files = sorted(tmp_path.rglob("metrics.csv"))
    assert len(files) == 1
    rows = read_metrics(files[0])
    for key in ("test/top1", "test/top5", "test/mean_class_acc", "test/loss", "test/action_loss", "test/caption_loss"):
        assert _last(rows, key) >= 0.0
    for key in ("test/bleu1", "test/bleu4", "test/rouge_l", "test/cider"):
        assert 0.0 <= _last(rows, key) <= 10.0
    if shutil.which("java"):
        assert 0.0 <= _last(rows, "test/meteor") <= 1.0
    assert _last(rows, "test/top1") <= _last(rows, "test/top5")
    # per-class top-1 (what `make demo` scores groups of classes with) agrees with the overall top-1
    classes = torch.load(ckpt, map_location="cpu", weights_only=False)["hyper_parameters"]["classes"]
    counts = {c: 0 for c in classes}
    for r in read_manifest(tiny_dataset / "test.jsonl"):
        counts[r.label] += 1
    # logged for the classes with test clips only, under class_top1_key's name
    per_class = {c: _last(rows, class_top1_key(c)) for c in classes if counts[c]}
    assert not any(class_top1_key(c) in rows[-1] for c in classes if not counts[c])
    assert all(0.0 <= v <= 1.0 for v in per_class.values())
    overall = sum(per_class[c] * n for c, n in counts.items() if n) / sum(counts.values())
    assert overall == pytest.approx(_last(rows, "test/top1"), abs=1e-5)


# -- in-process variations ---------------------------------------------------------------


@pytest.fixture
def fit_briefly(tmp_path, tiny_dataset, debug_args):
    """``fit_briefly(*extra)``: an in-process ``fit`` on the tiny dataset under ``tmp_path``
    (1 epoch, 2 train batches, 1 val batch), with ``extra`` arguments added at the end."""
    from vidrec.training.cli import cli_main

    def fit(*extra: str):
        args = [
            "fit",
            *debug_args(tmp_path, tiny_dataset),
            "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "2",
            "--trainer.limit_val_batches", "1",
            *extra,
        ]
        return cli_main(args)

    return fit


@pytest.mark.parametrize("temporal", ["mean", "gru"])
def test_temporal_choice_from_the_command_line(tmp_path, fit_briefly, temporal):
    from vidrec.checkpoint import load_checkpoint

    cli = fit_briefly("--model.temporal", temporal)
    enc = cli.model.net.temporal.eval()
    assert enc.temporal == temporal
    d, h = cli.model.net.backbone.out_dim, cli.model.hparams["hidden_size"]
    # the parameters are exactly those of a GRU / of a per-frame projection (no LSTM's 4 gates)
    reference = torch.nn.GRU(d, h) if temporal == "gru" else torch.nn.Linear(d, h)
    assert sum(p.numel() for p in enc.parameters()) == sum(p.numel() for p in reference.parameters())
    # the mean baseline cannot see frame order; a GRU does
    x = torch.randn(2, 5, d, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, encoding = enc(x)
        _, reversed_encoding = enc(x.flip(1))
    assert torch.allclose(encoding, reversed_encoding, atol=1e-6) == (temporal == "mean")
    assert cli.trainer.global_step == 2
    ckpt = sorted(tmp_path.rglob("last.ckpt"))
    assert ckpt
    hp = torch.load(ckpt[0], map_location="cpu", weights_only=False)["hyper_parameters"]
    assert hp["temporal"] == temporal
    # and the checkpoint alone rebuilds the same encoder
    loaded = load_checkpoint(ckpt[0]).net.temporal
    assert loaded.temporal == temporal
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[1], encoding)


def test_tensorboard_logger(tmp_path, fit_briefly):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb_dir = tmp_path / "tb"
    cli = fit_briefly("--trainer.logger", "TensorBoardLogger", "--trainer.logger.save_dir", str(tb_dir))
    assert type(cli.trainer.logger).__name__ == "TensorBoardLogger"
    events = sorted(tb_dir.rglob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(events[0].parent), size_guidance={"images": 0, "tensors": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert "train/loss" in tags["scalars"] and "val/top1" in tags["scalars"]
    assert "val/confusion_matrix" in tags["images"]  # the confusion-matrix figure
    assert any(t.startswith("val/samples") for t in tags["tensors"])  # the samples table as text


@pytest.mark.slow
def test_wandb_offline_run_without_credentials(tmp_path, tiny_dataset, debug_args):
    home = tmp_path / "home"
    home.mkdir()
    save_dir = tmp_path / "wandb_logs"
    env = _env(HOME=str(home), WANDB_MODE="offline", WANDB_SILENT="true")
    for key in ("WANDB_API_KEY", "NETRC", "WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        env.pop(key, None)
    args = [
        "fit",
        *debug_args(tmp_path / "root", tiny_dataset),
        "--trainer.logger", "vidrec.training.loggers.WandbAutoLogger",
        "--trainer.logger.save_dir", str(save_dir),
        "--trainer.max_epochs", "1",
        "--trainer.limit_train_batches", "2",
        "--trainer.limit_val_batches", "1",
    ]
    _train_py(args, cwd=tmp_path, env=env)
    runs = sorted((save_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, sorted(p.name for p in (save_dir / "wandb").iterdir())
    assert sorted(runs[0].glob("run-*.wandb")), "no offline run data"
    assert not (home / ".netrc").exists()  # nothing logged in on the way


def test_wandb_auto_logger_goes_offline_without_credentials(tmp_path, monkeypatch):
    from vidrec.training.loggers import wandb_logged_in

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no_netrc"))
    assert not wandb_logged_in()
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert wandb_logged_in()
    monkeypatch.setenv("NETRC", str(tmp_path / "no_netrc"))
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_logged_in()


# -- classes and vocabulary linking ------------------------------------------------------


def _instantiate(args: list[str]):
    from vidrec.training.cli import cli_main

    return cli_main(args, run=False)


def test_classes_follow_classes_txt_order(tmp_path, tiny_dataset):
    records = read_manifest(tiny_dataset / "train.jsonl")
    labels = sorted({r.label for r in records})
    order = list(reversed(labels)) + ["never_seen_in_train"]
    folder = tmp_path / "data"
    manifest = write_manifest(folder / "train.jsonl", records)
    write_classes(folder / "classes.txt", order)
    cli = _instantiate(["--config", str(DEBUG), "--data.train_manifest", str(manifest)])
    assert cli.datamodule.classes == order
    assert cli.model.hparams["classes"] == order
    assert cli.model.classes == order
    assert cli.model.net.action_head.fc.out_features == len(order)
    assert cli.model.vocab.itos == cli.datamodule.vocab_tokens


def test_classes_default_to_sorted_training_labels(tmp_path, tiny_dataset):
    records = read_manifest(tiny_dataset / "train.jsonl")[:5]  # a subset of the classes
    manifest = write_manifest(tmp_path / "train.jsonl", records[::-1])
    cli = _instantiate(["--config", str(DEBUG), "--data.train_manifest", str(manifest)])
    expected = sorted({r.label for r in records})
    assert cli.datamodule.classes == expected
    assert cli.model.hparams["classes"] == expected
    assert cli.model.net.action_head.fc.out_features == len(expected)


# -- configs: base.yaml first, callbacks that follow the logger and the progress bar ----


def test_base_config_is_read_before_the_dataset_config(tmp_path, tiny_dataset):
    from vidrec.training.cli import BASE_CONFIG

    assert BASE_CONFIG == REPO / "configs" / "base.yaml"
    cli = _instantiate(["--config", str(DEBUG), "--data.train_manifest", str(tiny_dataset / "train.jsonl"),
                        "--trainer.default_root_dir", str(tmp_path), "--trainer.logger.save_dir", str(tmp_path)])
    # debug.yaml sets only the learning rate; the optimizer and its weight decay come from base.yaml
    optimizer = cli.model.configure_optimizers()["optimizer"]
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["lr"] == pytest.approx(0.003) and optimizer.defaults["weight_decay"] == pytest.approx(0.01)
    assert cli.model.hparams["temporal"] == "lstm"  # base.yaml
    assert cli.model.hparams["backbone"] == "resnet18"  # debug.yaml wins over base.yaml
    assert cli.datamodule.cache_dir is None  # debug.yaml turns base.yaml's cache off


def test_lr_monitor_and_progress_bar_follow_the_logger_and_the_bar(tmp_path, tiny_dataset):
    from pytorch_lightning.callbacks import LearningRateMonitor, RichProgressBar
    from pytorch_lightning.callbacks.progress import ProgressBar

    common = ["--config", str(DEBUG), "--data.train_manifest", str(tiny_dataset / "train.jsonl"),
              "--trainer.default_root_dir", str(tmp_path)]
    on = _instantiate([*common, "--trainer.logger.save_dir", str(tmp_path)]).trainer
    assert sum(isinstance(c, LearningRateMonitor) for c in on.callbacks) == 1
    assert sum(isinstance(c, ProgressBar) for c in on.callbacks) == 1
    assert isinstance(on.progress_bar_callback, RichProgressBar)

    off = _instantiate([*common, "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]).trainer
    assert off.logger is None and off.progress_bar_callback is None
    assert not any(isinstance(c, (LearningRateMonitor, ProgressBar)) for c in off.callbacks)


def test_last_checkpoint_every_n_train_steps_from_the_command_line(tmp_path, tiny_dataset):
    # README: `--trainer.callbacks.every_n_train_steps N` sets it on the last callback of the list,
    # which is LastCheckpoint in every shipped config (or in base.yaml, which a config without
    # callbacks keeps).
    import yaml

    from vidrec.training.checkpointing import LastCheckpoint

    for config in sorted((REPO / "configs").glob("*.yaml")):
        callbacks = (yaml.safe_load(config.read_text()).get("trainer") or {}).get("callbacks")
        assert callbacks is None or callbacks[-1]["class_path"] == "vidrec.training.checkpointing.LastCheckpoint", config
    trainer = _instantiate(["--config", str(DEBUG), "--data.train_manifest", str(tiny_dataset / "train.jsonl"),
                            "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "false",
                            "--trainer.callbacks.every_n_train_steps", "500"]).trainer
    (last,) = [c for c in trainer.callbacks if isinstance(c, LastCheckpoint)]
    assert last._every_n_train_steps == 500


def test_wandb_save_dir_defaults_to_the_default_root_dir(tmp_path, tiny_dataset, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.chdir(tmp_path)  # nothing may land in the current folder
    root = tmp_path / "runs" / "mine"
    cli = _instantiate([
        "--config", str(REPO / "configs" / "synthetic.yaml"),
        "--data.train_manifest", str(tiny_dataset / "train.jsonl"),
        "--data.val_manifest", str(tiny_dataset / "val.jsonl"),
        "--data.test_manifest", str(tiny_dataset / "test.jsonl"),
        "--model.weights", "none",
        "--trainer.default_root_dir", str(root),
    ])
    logger = cli.trainer.logger
    assert type(logger).__name__ == "WandbAutoLogger"
    assert Path(logger.save_dir) == root and root.is_dir()
    assert not (tmp_path / "wandb").exists()


@pytest.mark.parametrize("logger", ["TensorBoardLogger", "CSVLogger"])
def test_logger_by_name_alone_logs_under_default_root_dir(tmp_path, tiny_dataset, logger):
    """README: `--trainer.logger CSVLogger` / `TensorBoardLogger` work as they are, their logs going
    where the checkpoints go. Both loggers require save_dir, and jsonargparse refused the
    command before train.py could fill it in from default_root_dir (found by a user run)."""
    import yaml

    from vidrec.training.cli import cli_main

    # configs/debug.yaml without its logger: base.yaml's W&B logger stays, as under configs/custom.yaml
    config = yaml.safe_load(DEBUG.read_text())
    del config["trainer"]["logger"]
    (tmp_path / "nolog.yaml").write_text(yaml.safe_dump(config))
    root = tmp_path / "run"
    cli = cli_main([
        "fit",
        "--config", str(tmp_path / "nolog.yaml"),
        "--data.train_manifest", str(tiny_dataset / "train.jsonl"),
        "--data.val_manifest", str(tiny_dataset / "val.jsonl"),
        "--trainer.default_root_dir", str(root),
        "--trainer.enable_progress_bar", "false",
        "--trainer.max_epochs", "1",
        "--trainer.limit_train_batches", "1",
        "--trainer.limit_val_batches", "1",
        "--trainer.logger", logger,
    ])
    assert type(cli.trainer.logger).__name__ == logger
    assert Path(cli.trainer.logger.save_dir).resolve() == root.resolve()
    pattern = "metrics.csv" if logger == "CSVLogger" else "events.out.tfevents.*"
    assert sorted(root.rglob(pattern))


def _drop(manifest: Path, out: Path, **blank) -> Path:
    """A copy of ``manifest`` with the given fields blanked (``label=None``, ``captions=[]``)."""
    from dataclasses import replace

    return write_manifest(out, [replace(r, **blank) for r in read_manifest(manifest)])


def test_captions_alone_choose_checkpoints_by_val_loss_not_top1(tmp_path, tiny_dataset, debug_args):
    """debug.yaml picks best-*.ckpt by val/top1; trained on captions alone there is no top-1.
    Lightning stopped after the first epoch's training; the monitor now falls back to val/loss."""
    from vidrec.training.cli import cli_main

    train = _drop(tiny_dataset / "train.jsonl", tmp_path / "captions" / "train.jsonl", label=None)
    val = _drop(tiny_dataset / "val.jsonl", tmp_path / "captions" / "val.jsonl", label=None)
    args = debug_args(tmp_path / "run", tiny_dataset, train)
    args[args.index("--data.val_manifest") + 1] = str(val)
    args += ["--trainer.logger", "false"]  # one checkpoint folder for the fit and its resumption (no logger versions)
    with pytest.warns(UserWarning, match=r"monitors 'val/top1', which this model never logs \(no action head"):
        cli = cli_main(["fit", *args, "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "2"])
    assert cli.model.net.action_head is None
    best = cli.trainer.checkpoint_callback
    assert (best.monitor, best.mode) == ("val/loss", "min")
    assert Path(best.best_model_path).is_file() and best.best_model_path.startswith(str(tmp_path / "run"))

    # Resumed, the callback must find its saved best under the switched monitor: had it not, the
    # first validation would write a new best whatever its loss and leave the old file behind.
    last = next((tmp_path / "run").rglob("last.ckpt"))
    with pytest.warns(UserWarning, match="never logs"):
        resumed = cli_main(["fit", *args, "--trainer.max_epochs", "3", "--trainer.limit_train_batches", "2", "--ckpt_path", str(last)])
    kept = resumed.trainer.checkpoint_callback
    assert kept.monitor == "val/loss" and len(list((tmp_path / "run").rglob("best-*.ckpt"))) == 1
    assert float(kept.best_model_score) <= float(best.best_model_score)  # never a worse one than before


def test_monitor_that_is_logged_is_left_alone_and_others_fall_back(tmp_path):
    from pytorch_lightning import Trainer
    from pytorch_lightning.callbacks import ModelCheckpoint

    from vidrec.training.checkpoint_monitor import monitor_what_is_logged

    cider, top1, train_loss = (ModelCheckpoint(monitor="val/cider", mode="max"), ModelCheckpoint(monitor="val/top1", mode="max"),
                               ModelCheckpoint(monitor="train/loss"))
    trainer = Trainer(callbacks=[cider, top1, train_loss], default_root_dir=tmp_path, logger=False)
    with pytest.warns(UserWarning, match="'val/cider'.*no caption decoder") as caught:
        monitor_what_is_logged(trainer, {"val/top1", "val/loss"}, "no caption decoder: no captions")
    assert len(caught) == 1
    assert (cider.monitor, cider.mode, float(cider.kth_value)) == ("val/loss", "min", float("inf"))
    assert (top1.monitor, top1.mode) == ("val/top1", "max")
    assert train_loss.monitor == "train/loss"


def test_early_stopping_on_a_metric_never_logged_falls_back_and_twins_are_left_out(tmp_path):
    from pytorch_lightning import Trainer
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    from vidrec.training.checkpoint_monitor import monitor_what_is_logged

    stop = EarlyStopping(monitor="val/top1", mode="max", min_delta=0.01, stopping_threshold=0.9, divergence_threshold=0.1)
    top1, loss = ModelCheckpoint(monitor="val/top1", mode="max", filename="top1"), ModelCheckpoint(monitor="val/loss", mode="min")
    trainer = Trainer(callbacks=[stop, top1, loss], default_root_dir=tmp_path, logger=False)
    with pytest.warns(UserWarning) as caught:
        monitor_what_is_logged(trainer, {"val/cider", "val/loss"}, "no action head: no labels")
    said = [str(w.message) for w in caught]
    assert any(m.startswith("EarlyStopping monitors 'val/top1'") and "training stops (its stopping_threshold and "
               "divergence_threshold, values of 'val/top1', are dropped) by 'val/loss'" in m for m in said)
    assert any("another ModelCheckpoint already watches 'val/loss': this one (filename='top1'" in m for m in said)
    # switched as EarlyStopping(monitor="val/loss", mode="min", min_delta=0.01) would have been built
    fresh = EarlyStopping(monitor="val/loss", mode="min", min_delta=0.01)
    assert (stop.monitor, stop.mode, stop.min_delta, float(stop.best_score)) == ("val/loss", "min", fresh.min_delta, float("inf"))
    assert stop.stopping_threshold is None and stop.divergence_threshold is None and stop.state_key == fresh.state_key
    assert top1 not in trainer.callbacks and trainer.checkpoint_callbacks.count(loss) == 1

    # A negative min_delta (a tolerance) keeps its meaning too; an EarlyStopping twin is left out like a checkpoint.
    tolerant = EarlyStopping(monitor="val/top1", mode="max", min_delta=-0.01, patience=2)
    already = EarlyStopping(monitor="val/loss", mode="min", patience=10)
    trainer = Trainer(callbacks=[tolerant, already], default_root_dir=tmp_path, logger=False)
    with pytest.warns(UserWarning, match=r"another EarlyStopping already watches 'val/loss': this one \(patience=2\) is left out"):
        monitor_what_is_logged(trainer, {"val/loss"}, "no action head: no labels")
    assert tolerant.min_delta == EarlyStopping(monitor="val/loss", mode="min", min_delta=-0.01).min_delta
    assert tolerant not in trainer.callbacks and already in trainer.callbacks


def test_captions_alone_with_early_stopping_on_top1_trains_on(tmp_path, tiny_dataset, debug_args):
    """An EarlyStopping added on val/top1 stopped a captions-only run after its first epoch; it now
    watches val/loss and the run trains its epochs."""
    from pytorch_lightning.callbacks import EarlyStopping

    from vidrec.training.cli import cli_main

    train = _drop(tiny_dataset / "train.jsonl", tmp_path / "captions" / "train.jsonl", label=None)
    val = _drop(tiny_dataset / "val.jsonl", tmp_path / "captions" / "val.jsonl", label=None)
    args = debug_args(tmp_path / "run", tiny_dataset, train)
    args[args.index("--data.val_manifest") + 1] = str(val)
    with pytest.warns(UserWarning, match=r"EarlyStopping monitors 'val/top1'.*training stops by 'val/loss'"):
        cli = cli_main(["fit", *args, "--trainer.logger", "false", "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "1",
                        "--trainer.callbacks+=EarlyStopping", "--trainer.callbacks.monitor=val/top1",
                        "--trainer.callbacks.mode=max", "--trainer.callbacks.patience=5"])
    stop = next(c for c in cli.trainer.callbacks if isinstance(c, EarlyStopping))
    assert stop.monitor == "val/loss" and torch.isfinite(stop.best_score)  # it read the validation loss
    assert cli.trainer.current_epoch == 2  # both epochs ran


@pytest.mark.parametrize("problem", ["no_val_manifest", "missing_manifest", "missing_checkpoint", "not_a_checkpoint"])
def test_train_py_says_what_input_is_wrong_in_one_line(tmp_path, tiny_dataset, debug_args, problem):
    args = ["fit", *debug_args(tmp_path, tiny_dataset), "--trainer.max_epochs", "1"]
    expected = {"no_val_manifest": "no val manifest given: pass --data.val_manifest",
                "missing_manifest": f"{tmp_path / 'gone.jsonl'}: manifest not found",
                "missing_checkpoint": f"{tmp_path / 'gone.ckpt'}: checkpoint not found",
                "not_a_checkpoint": f"{tmp_path / 'notes.ckpt'}: not a readable PyTorch checkpoint"}[problem]
    (tmp_path / "notes.ckpt").write_text("weights_only notes, not a checkpoint\n")  # text that names weights_only
    if problem == "no_val_manifest":
        del args[args.index("--data.val_manifest") : args.index("--data.val_manifest") + 2]
    elif problem == "missing_manifest":
        args[args.index("--data.train_manifest") + 1] = str(tmp_path / "gone.jsonl")
    else:
        ckpt = tmp_path / ("gone.ckpt" if problem == "missing_checkpoint" else "notes.ckpt")
        args = ["test", *debug_args(tmp_path, tiny_dataset), "--data.test_manifest", str(tiny_dataset / "test.jsonl"),
                "--ckpt_path", str(ckpt)]
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: ") and expected in last, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr

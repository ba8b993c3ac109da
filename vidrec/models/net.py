"""VideoRecognizer: backbone -> temporal encoder -> action head + caption decoder. No Lightning here.

``build_recognizer(hparams)`` builds it from the flat hyperparameters that configs, the
LightningModule and checkpoints share. Each hyperparameter has one name from YAML to the
constructor that takes it, so the builder hands each part exactly its own arguments.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from vidrec.data.motion import FLOW_STATS_DIM, MotionInput, feature_differences, reads_frames
from vidrec.models.backbone import FrozenBackbone
from vidrec.models.heads import ActionHead, CaptionDecoder
from vidrec.models.temporal import TemporalEncoder

__all__ = ["VideoRecognizer", "build_recognizer", "frame_features"]


def frame_features(
    backbone: FrozenBackbone, frames: torch.Tensor, motion: torch.Tensor | None, kind: MotionInput
) -> torch.Tensor:
    """Per-frame features of frames (B, T, 3, H, W) -> (B, T, D), with the data-side motion input
    appended for ``kind`` ``flow`` (flow images (B, T, 3, H, W) through the same frozen
    backbone: M = D) or ``flow_stats`` ((B, T, 63) as they are): (B, T, D + M).

    Test views add a leading axis to frames and motion alike, (B, N, T, ...) -> (B, N, T, D [+ M]):
    view n's motion goes beside view n's frames."""
    if frames.ndim == 6:  # (B, N, T, 3, H, W): one clip per view, the plain (5-d) path traces as before for ONNX
        b, n = frames.shape[:2]
        flat_motion = motion.flatten(0, 1) if motion is not None else None  # (B*N, T, ...)
        return frame_features(backbone, frames.flatten(0, 1), flat_motion, kind).unflatten(0, (b, n))
    features = backbone(frames)  # (B, T, D)
    if reads_frames(kind):
        if motion is None:
            raise ValueError(f"this model reads a {kind!r} motion input: pass motion=")
        extra = backbone(motion) if kind == "flow" else motion.to(features.dtype)
        features = torch.cat([features, extra], dim=-1)  # (B, T, D + M)
    return features


class VideoRecognizer(nn.Module):
    """The whole network. Takes decoded frames, or per-frame features read from the cache.

    ``caption_decoder`` is ``None`` for datasets without captions. With a ``motion`` input
    (``vidrec.data.motion.MotionInput``) a second temporal model, ``motion_temporal``, reads
    the motion stream on its own, and the two encodings are concatenated for the heads: a
    linear action head on them adds one logit vector per stream (late fusion). Kept apart,
    the appearance stream cannot drown the motion one in what each training video looks like.
    In training, ``appearance_dropout`` hides the appearance stream from some clips, and
    ``motion_speed_jitter`` scales each clip's flow statistics as if filmed faster or slower.

    With ``caption_from_action`` the caption decoder also reads the action head's class
    probabilities (``caption_input``): the words that name the action are read off the
    classifier, which learns them better than the word-level loss alone (on real footage never
    seen in training the head was right more often than the captions named its action). The
    decoder must then be built ``condition_dim=C`` wide for it (``build_recognizer`` does).
    """

    def __init__(
        self,
        backbone: FrozenBackbone,
        temporal: TemporalEncoder,
        action_head: ActionHead | None,
        caption_decoder: CaptionDecoder | None = None,
        motion: MotionInput = "none",
        motion_temporal: TemporalEncoder | None = None,
        appearance_dropout: float = 0.0,
        caption_from_action: bool = False,
        caption_video_dropout: float = 0.0,
        motion_speed_jitter: float = 0.0,
    ):
        super().__init__()
        if not 0.0 <= caption_video_dropout < 1.0:
            raise ValueError(f"caption_video_dropout must be in [0, 1), got {caption_video_dropout}")
        if caption_video_dropout and not caption_from_action:
            raise ValueError("caption_video_dropout blanks the video so that the decoder reads the action: it needs caption_from_action")
        self.caption_video_dropout = caption_video_dropout
        _check_caption_condition(action_head, caption_decoder, caption_from_action)
        if not 0.0 <= appearance_dropout < 1.0:
            raise ValueError(f"appearance_dropout must be in [0, 1), got {appearance_dropout}")
        self.appearance_dropout = appearance_dropout
        if motion_speed_jitter < 0 or (motion_speed_jitter > 0 and motion != "flow_stats"):
            raise ValueError(f"motion_speed_jitter ({motion_speed_jitter}) must be >= 0, and > 0 only with motion: flow_stats "
                             f"(whose numbers scale with the speed), not {motion!r}")
        self.motion_speed_jitter = motion_speed_jitter
        if (motion == "none") != (motion_temporal is None):
            raise ValueError("a motion input needs its motion_temporal model, and only then")
        self.backbone = backbone
        self.temporal = temporal
        self.action_head = action_head
        self.caption_decoder = caption_decoder
        self.motion = motion
        self.motion_temporal = motion_temporal
        self.caption_from_action = caption_from_action

    def frame_features(self, frames: torch.Tensor, motion: torch.Tensor | None = None) -> torch.Tensor:
        """What the feature cache stores: frames (B, T, 3, H, W) [+ data-side motion] -> (B, T, D [+ M])."""
        return frame_features(self.backbone, frames, motion, self.motion)

    def encode(
        self, frames: torch.Tensor | None = None, features: torch.Tensor | None = None, motion: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (B, T, 3, H, W) [+ motion] or features (B, T, D [+ M]) -> (sequence (B, T, H'), encoding (B, H'))."""
        if features is None:
            if frames is None:
                raise ValueError("pass frames or features")
            features = self.frame_features(frames, motion)
        features = features.float()
        rgb = features[..., : self.backbone.out_dim]  # (B, T, D)
        sequence, encoding = self.temporal(rgb)
        if self.motion_temporal is None:
            return sequence, encoding
        if self.motion == "feature_diff":
            stream = feature_differences(rgb, pad=True)  # (B, T, D): step t is f[t] - f[t-1]
        else:
            stream = features[..., self.backbone.out_dim :]  # (B, T, M)
        if self.training and self.motion_speed_jitter > 0:
            stream = stream * self._speed_factors(stream.shape[0], stream.device)  # (B, T, M) * (B, 1, 1)
        motion_sequence, motion_encoding = self.motion_temporal(stream)
        if self.training and self.appearance_dropout > 0:
            # Modality dropout: for some clips the heads see only the motion stream, so they
            # cannot lean on what the training videos look like alone (which does not carry
            # over to new footage); scaled like dropout, so evaluation needs no change.
            keep = (torch.rand(encoding.shape[0], 1, device=encoding.device) >= self.appearance_dropout).float()
            keep = keep / (1 - self.appearance_dropout)
            sequence, encoding = sequence * keep[:, :, None], encoding * keep
        return torch.cat([sequence, motion_sequence], dim=-1), torch.cat([encoding, motion_encoding], dim=-1)

    def _speed_factors(self, clips: int, device: torch.device) -> torch.Tensor:
        """One factor per training clip, log-uniform in exp(+-motion_speed_jitter): (B, 1, 1).

        Flow statistics are linear in the speed of what moves: every flow mean, magnitude and
        affine term, and the colour change, doubles when the same motion is twice as fast (or
        the clip's frames twice as far apart). Scaling a clip's whole stream by one factor shows
        the model its classes at other speeds than the training footage's, so a test video
        filmed faster, slower or at another frame rate is not outside everything it has seen.
        """
        log_factor = (torch.rand(clips, 1, 1, device=device) * 2 - 1) * self.motion_speed_jitter
        return log_factor.exp()

    def forward(self, frames: torch.Tensor | None = None, features: torch.Tensor | None = None) -> torch.Tensor:
        """Action logits (B, C); the export and the simple path."""
        _, encoding = self.encode(frames, features)
        return self.action_head(encoding)

    def caption_input(
        self,
        encoding: torch.Tensor,
        sequence: torch.Tensor | None = None,
        logits: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the caption decoder reads for clip encodings (B, H') and their per-frame
        ``sequence`` (B, T, H'): ``(video, frames)``. ``video`` is the encoding itself, or with
        ``caption_from_action`` cat([encoding, p]) (B, H' + C), p the action head's class
        probabilities softmax(``logits``).

        ``logits`` (B, C): the action head's logits for these clips, or the log of their
        probabilities averaged over test views (the softmax gives that average back); None =
        the head on ``encoding``. p is detached: the caption loss must not train the action head
        into whatever makes captions easy, only read what it has learnt.

        In training, ``labels`` (B,) (-1 = unlabelled) replace p by the true class where known,
        as teacher forcing gives the true previous word; and ``caption_video_dropout`` blanks
        the encoding and frames of that share of the clips. Without the blanking the decoder
        learns the action words from the video as well, and on footage never seen in training
        those are wrong more often than the action head (0.81 against 0.86); blanked clips can
        only be captioned right by reading the class.
        """
        if not self.caption_from_action:
            return encoding, sequence
        if logits is None:
            logits = self.action_head(encoding)
        probs = logits.detach().float().softmax(-1)  # (B, C)
        if self.training and labels is not None:
            known = (labels >= 0)[:, None]  # (B, 1)
            probs = torch.where(known, F.one_hot(labels.clamp_min(0), probs.shape[-1]).float(), probs)
        if self.training and self.caption_video_dropout > 0:
            keep = (torch.rand(encoding.shape[0], 1, device=encoding.device) >= self.caption_video_dropout).to(encoding.dtype)
            encoding = encoding * keep  # (B, H'): a blanked clip is all zeros (no rescaling: evaluation sees the video)
            sequence = sequence * keep[:, :, None] if sequence is not None else None  # (B, T, H')
        return torch.cat([encoding, probs.to(encoding.dtype)], dim=-1), sequence  # (B, H' + C), (B, T, H')

    def caption(
        self,
        encoding: torch.Tensor,
        beam_size: int = 1,
        max_len: int = 20,
        length_penalty: float = 0.0,
        sequence: torch.Tensor | None = None,
        logits: torch.Tensor | None = None,
    ):
        """Caption word ids (B, L) for clip encodings (B, H'); ``sequence`` (B, T, H') for an
        attention decoder; ``logits`` (B, C) what ``caption_input`` conditions on (None = the
        action head on ``encoding``; unused without ``caption_from_action``)."""
        if self.caption_decoder is None:
            raise RuntimeError("this model has no caption decoder (trained without captions)")
        video, sequence = self.caption_input(encoding, sequence, logits)  # (B, H' [+ C]), (B, T, H')
        if beam_size <= 1:
            return self.caption_decoder.greedy(video, max_len, frames=sequence)
        return self.caption_decoder.beam_search(video, beam_size, max_len, length_penalty, frames=sequence)


def _check_caption_condition(
    action_head: ActionHead | None, caption_decoder: CaptionDecoder | None, caption_from_action: bool
) -> None:
    """``caption_from_action`` needs both heads, and a decoder built as wide as the class count."""
    if caption_from_action:
        parts = (("an action head (no classes)", action_head), ("a caption decoder (no captions)", caption_decoder))
        missing = [name for name, part in parts if part is None]
        if missing:
            raise ValueError(
                "caption_from_action feeds the action head's probabilities to the caption decoder, but this model "
                f"lacks {' and '.join(missing)}: train on clips with labels and captions, or set caption_from_action false"
            )
        if caption_decoder.condition_dim != action_head.fc.out_features:
            raise ValueError(
                f"caption_from_action: the caption decoder's condition_dim ({caption_decoder.condition_dim}) "
                f"must be the number of classes ({action_head.fc.out_features})"
            )
    elif caption_decoder is not None and caption_decoder.condition_dim:
        raise ValueError(f"a caption decoder with condition_dim={caption_decoder.condition_dim} needs caption_from_action")


def _own_args(part: type, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters named like ``part``'s constructor arguments."""
    names = inspect.signature(part.__init__).parameters
    return {k: v for k, v in hparams.items() if k in names}


def build_recognizer(hparams: Mapping[str, Any]) -> VideoRecognizer:
    """The network described by ``hparams`` (a ``VidRecModule``'s hyperparameters).

    ``classes`` (list of names) sizes the action head and ``vocab`` (token list) the caption
    decoder; either may be empty, not both. Backbone weights are loaded as ``weights`` says:
    a checkpoint loader passes ``weights="none"`` since its state dict holds them.
    """
    classes, vocab = list(hparams.get("classes") or []), list(hparams.get("vocab") or [])
    if not classes and not vocab:
        raise ValueError("nothing to learn: no classes and no caption vocabulary (is the train manifest empty?)")
    backbone = FrozenBackbone(**_own_args(FrozenBackbone, hparams))
    temporal = TemporalEncoder(backbone.out_dim, **_own_args(TemporalEncoder, hparams))
    motion = hparams.get("motion") or "none"
    motion_temporal = None
    if motion != "none":
        # Same kind of temporal model (an order-blind `mean` stays order-blind on motion too), its own size.
        width = FLOW_STATS_DIM if motion == "flow_stats" else backbone.out_dim
        args = {**_own_args(TemporalEncoder, hparams), "hidden_size": hparams.get("motion_hidden_size", 128)}
        motion_temporal = TemporalEncoder(width, **args)
    out_dim = temporal.out_dim + (motion_temporal.out_dim if motion_temporal is not None else 0)
    head = ActionHead(out_dim, len(classes), **_own_args(ActionHead, hparams)) if classes else None
    # Checkpoints from before the option lack it: they were trained without.
    from_action = bool(hparams.get("caption_from_action", False))
    condition = len(classes) if from_action else 0  # (B, C) probabilities beside the (B, H') encoding
    decoder = None
    if vocab:
        decoder = CaptionDecoder(len(vocab), out_dim + condition, condition_dim=condition, **_own_args(CaptionDecoder, hparams))
    return VideoRecognizer(
        backbone,
        temporal,
        head,
        decoder,
        motion,
        motion_temporal,
        hparams.get("appearance_dropout", 0.0),
        from_action,
        hparams.get("caption_video_dropout", 0.0),
        hparams.get("motion_speed_jitter", 0.0),  # absent from checkpoints saved before it: none
    )

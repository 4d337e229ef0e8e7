"""The multi-task network: one shared encoder, one head per task, outputs keyed by task name."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from edgemtl.tasks import TaskSpec


class MultiTaskNet(nn.Module):
    """`features = encoder(x)`; `outputs[task] = heads[task](features)`.

    Takes normalized float images (B, 3, H, W) with H and W multiples of `encoder.stride`; returns
    raw outputs: logits for classification, multilabel and segmentation, values for regression.
    Pre- and postprocessing belong to the export wrapper, not here, so training sees plain tensors.
    """

    def __init__(self, encoder: nn.Module, heads: dict[str, nn.Module], tasks: Sequence[TaskSpec]) -> None:
        super().__init__()
        self.encoder = encoder  # the built-in Encoder or a TimmEncoder: feature maps finest first
        self.heads = nn.ModuleDict(heads)
        self.tasks = tuple(tasks)
        self.encoder_frozen = False

    def freeze_encoder(self) -> MultiTaskNet:
        """Train the heads only: the encoder's weights get no gradient and its batch-norm statistics stay
        as loaded (a pretrained encoder's running means are what its weights expect)."""
        self.encoder.requires_grad_(False)
        self.encoder_frozen = True
        return self.train(self.training)

    def train(self, mode: bool = True) -> MultiTaskNet:
        super().train(mode)
        if self.encoder_frozen:
            self.encoder.eval()
        return self

    def forward_features(self, x: Tensor) -> list[Tensor]:
        return self.encoder(x)

    def forward_heads(self, features: list[Tensor]) -> dict[str, Tensor]:
        return {name: head(features) for name, head in self.heads.items()}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.forward_heads(self.forward_features(x))

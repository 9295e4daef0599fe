"""Network pieces the recipes share; all export to plain ONNX ops with a dynamic batch axis."""

from __future__ import annotations

import math

import torch
from torch import nn


class Standardize(nn.Module):
    """(x - mean) / std with training-split statistics baked in: clients send raw features."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.float())
        # Constant inputs (digits' always-blank border pixels) have std 0: leave them unscaled.
        # Constant means below float32's own resolution of the mean, not below an absolute
        # size: a feature in metres or mol varies by 1e-7 and is as informative as any other.
        mean64, std64 = mean.double(), std.double()
        constant = std64 <= mean64.abs() * 1e-6
        self.register_buffer("std", torch.where(constant, 1.0, std64).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ScalarOutput(nn.Module):
    """Regression head: maps the network's standardized output back to target units, shape [N]."""

    mean: torch.Tensor
    std: torch.Tensor
    shift: torch.Tensor

    def __init__(self, mean: float, std: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std if std > 0 else 1.0, dtype=torch.float32))
        # The offset in units of std, added before scaling: the exporter's optimizer drops an
        # Add of a constant near zero (a mean of 8e-9 for a target of std 2e-7 vanished from
        # the graph); what it may drop this way is near zero in target stds, so negligible.
        self.register_buffer("shift", torch.tensor(mean / self.std.item(), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.squeeze(-1) + self.shift) * self.std


class RecurrentEncoder(nn.Module):
    """GRU or LSTM over [N, T, F]; the last layer's final hidden state summarises the sequence."""

    def __init__(self, cell: str, features: int, hidden: int, layers: int) -> None:
        super().__init__()
        kind = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = kind(features, hidden, num_layers=layers, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, state = self.rnn(x)
        hidden: torch.Tensor = state[0] if isinstance(state, tuple) else state
        return hidden[-1]


class EncoderLayer(nn.Module):
    """Post-norm Transformer encoder layer with explicit attention, so padding masks export."""

    def __init__(self, width: int, heads: int, ff_size: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, ff_size), nn.ReLU(), nn.Linear(ff_size, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad_bias: torch.Tensor) -> torch.Tensor:
        n, t, width = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(width // self.heads) + pad_bias
        attended = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(n, t, width)
        x = self.norm1(x + self.drop(self.proj(attended)))
        out: torch.Tensor = self.norm2(x + self.drop(self.ff(x)))
        return out


class TextEncoder(nn.Module):
    """Token ids [N, T] (0 = padding) -> mean of the non-padding token states [N, width]."""

    def __init__(
        self, vocab: int, width: int, heads: int, layers: int, ff_size: int, dropout: float,
        max_length: int,
    ) -> None:  # fmt: skip
        super().__init__()
        self.max_length = max_length
        self.tokens = nn.Embedding(vocab, width, padding_idx=0)
        self.positions = nn.Embedding(max_length, width)
        self.layers = nn.ModuleList(
            EncoderLayer(width, heads, ff_size, dropout) for _ in range(layers)
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens[:, : self.max_length]  # longer inputs: the model reads the first max_length
        keep = (tokens != 0).unsqueeze(-1).float()
        # Position ids from the tokens themselves, not the table sliced to their length: torch
        # 2.11's exporter fails on that slice ("possible memo disaster", seen on a GPU machine).
        positions = torch.ones_like(tokens).cumsum(dim=1) - 1
        x = self.tokens(tokens) + self.positions(positions)
        # A large negative (not -inf) keeps an all-padding row finite instead of NaN.
        pad_bias = (tokens == 0).float()[:, None, None, :] * -1e4
        for layer in self.layers:
            x = layer(x, pad_bias)
        pooled: torch.Tensor = (x * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
        return pooled

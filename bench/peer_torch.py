"""The second peer: the plain PyTorch script a user would write in an afternoon.

The Keras peer's model and training (bench/peer.py) in PyTorch: nn.LSTM(28 -> 128) over the
rows, its last step's output into nn.Linear(128, 10), cross-entropy, Adam(1e-3), batch 128,
shuffled each epoch, validated on the same 5,000 images inside the timed part (as Keras'
validation_data is). PyTorch's defaults otherwise, threads included: nothing tuned. It
needs torch and numpy alone (requirements-torch.lock, make bench TORCH=1).
"""

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

BATCH_SIZE = 128


class Classifier(nn.Module):
    """LSTM(128) reading the 28 rows of 28 pixels, then 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size=28, hidden_size=128, batch_first=True)
        self.head = nn.Linear(128, 10)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.lstm(rows)
        return self.head(outputs[:, -1])


def load_split(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """A prepared split's images (float32, N x 28 x 28) and labels (int64, as the loss wants)."""
    x = np.load(folder / "x.npy", allow_pickle=False)
    y = np.load(folder / "y.npy", allow_pickle=False)
    return torch.from_numpy(x), torch.from_numpy(y).long()


def train(
    data_dir: Path, epochs: int, seed: int, on_epoch: Callable[[Classifier, float, float], None]
) -> Classifier:
    """Train the peer; on_epoch(model, seconds, validation accuracy) runs after each epoch's
    timed part."""
    torch.manual_seed(seed)
    x, y = load_split(data_dir / "train")
    x_val, y_val = load_split(data_dir / "val")
    model = Classifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_function = nn.CrossEntropyLoss()
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for batch in torch.randperm(len(x)).split(BATCH_SIZE):
            optimizer.zero_grad()
            loss_function(model(x[batch]), y[batch]).backward()
            optimizer.step()
        validation = accuracy(model, x_val, y_val)
        on_epoch(model, time.perf_counter() - start, validation)
    return model


def accuracy(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> float:
    """The share of digits the model gets right, 1,000 at a time."""
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(rows).argmax(dim=1) for rows in x.split(1000)])
    return (predicted == y).sum().item() / len(y)

"""A sibling module of the tfgru adapter (imported as ``from blocks import ...``, as a user's own file would be)."""

from torch import nn


class SeparableBlock(nn.Module):
    """Depthwise 3x3, pointwise 1x1, batch norm, ReLU, 2x2 max pool: (B, C_in, T, F) -> (B, C_out, T/2, F/2)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.norm = nn.BatchNorm2d(c_out)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        return self.pool(self.norm(self.pointwise(self.depthwise(x))).relu())

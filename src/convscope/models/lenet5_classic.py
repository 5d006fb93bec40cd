"""LeNet-5 as LeCun et al. (1998) published it, with its own layer names.

Input 32x32 (MNIST padded by 2). Every layer up to F6 squashes with
``1.7159 tanh(2/3 a)``. Layers and parameters (the published table):

=======  ===========================================  ======
C1       6 maps 5x5 convolution                        156
S2       2x2 sum x trainable coefficient + bias        12
C3       16 maps 5x5, partial connection table         1,516
S4       2x2 sum x trainable coefficient + bias        32
C5       120 maps 5x5 (fully connected to S4)          48,120
F6       84 units                                      10,164
output   10 Euclidean RBF units over 7x12 bitmaps      840
=======  ===========================================  ======

The RBF prototypes are the stylised 7x12 bitmaps of the digits (+1 ink, -1
background), chosen by hand and **kept fixed** as the paper did, so they are
non-trainable parameters (trainable 60,000, non-trainable 840). The output is the
negative squared distance to each prototype, so that larger means more likely and
the usual softmax / cross-entropy apply (the paper's penalty is the distance itself).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convscope.models.layers import Conv2dAct, LinearAct, activate

#: Which S2 maps feed each C3 map (LeCun 1998, Table I).
C3_CONNECTIONS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip

#: 7 wide x 12 high digit bitmaps for the RBF prototypes ('#' = +1, '.' = -1).
DIGIT_BITMAPS: tuple[str, ...] = (
    "..###.. .#...#. #.....# #.....# #.....# #.....# #.....# #.....# #.....# #.....# .#...#. ..###..",
    "...#... ..##... .#.#... ...#... ...#... ...#... ...#... ...#... ...#... ...#... ...#... .#####.",
    "..###.. .#...#. #.....# ......# .....#. ....#.. ...#... ..#.... .#..... #...... #...... #######",
    ".#####. #.....# ......# ......# .....#. ..###.. .....#. ......# ......# ......# #.....# .#####.",
    ".....#. ....##. ...#.#. ..#..#. .#...#. #....#. ####### .....#. .....#. .....#. .....#. .....#.",
    "####### #...... #...... #...... ######. ......# ......# ......# ......# ......# #.....# .#####.",
    "..####. .#..... #...... #...... ######. #.....# #.....# #.....# #.....# #.....# #.....# .#####.",
    "####### ......# .....#. .....#. ....#.. ....#.. ...#... ...#... ..#.... ..#.... ..#.... ..#....",
    ".#####. #.....# #.....# #.....# .#...#. ..###.. .#...#. #.....# #.....# #.....# #.....# .#####.",
    ".#####. #.....# #.....# #.....# #.....# #.....# .###### ......# ......# ......# .....#. .####..",
)


def digit_prototypes() -> torch.Tensor:
    """The 10 x 84 matrix of +-1 prototypes built from :data:`DIGIT_BITMAPS`."""
    rows = [
        [1.0 if c == "#" else -1.0 for c in bitmap.replace(" ", "")] for bitmap in DIGIT_BITMAPS
    ]
    return torch.tensor(rows)


class Subsampling(nn.Module):
    """S2/S4: sum of each 2x2 window times a trainable coefficient, plus a bias, squashed."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels) / 4)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window_sum = F.avg_pool2d(x, 2) * 4
        return activate(
            window_sum * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1), "scaled_tanh"
        )


class PartialConv2d(nn.Module):
    """C3: a 5x5 convolution where output map k sees only the inputs ``connections[k]``.

    Only the connected kernels are parameters (60 x 5 x 5 + 16 biases = 1,516); the
    dense ``weight`` property places them in an ``out x in x 5 x 5`` tensor with zeros
    for the missing connections, so kernels can be shown like any convolution's.
    """

    def __init__(self, connections: tuple[tuple[int, ...], ...], in_channels: int, kernel: int):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = len(connections)
        self.kernel_size = (kernel, kernel)
        self.connections = connections
        pairs = [(out, inp) for out, inputs in enumerate(connections) for inp in inputs]
        self.register_buffer("_out_index", torch.tensor([p[0] for p in pairs]), persistent=False)
        self.register_buffer("_in_index", torch.tensor([p[1] for p in pairs]), persistent=False)
        fan_in = torch.tensor([len(c) * kernel * kernel for c in connections])[self._out_index]
        bound = (2.4 / fan_in).view(-1, 1, 1)  # the paper's uniform(-2.4/F, 2.4/F) init
        self.connected_weight = nn.Parameter(
            (torch.rand(len(pairs), kernel, kernel) * 2 - 1) * bound
        )
        self.bias = nn.Parameter(torch.zeros(self.out_channels))

    @property
    def weight(self) -> torch.Tensor:
        """The dense kernel tensor, zero where a map is not connected."""
        dense = self.connected_weight.new_zeros(
            self.out_channels, self.in_channels, *self.kernel_size
        )
        return dense.index_put((self._out_index, self._in_index), self.connected_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return activate(F.conv2d(x, self.weight, self.bias), "scaled_tanh")

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"connections={sum(len(c) for c in self.connections)}"
        )


class RBFOutput(nn.Module):
    """Euclidean RBF units: output k is ``-||x - prototype_k||^2`` (fixed prototypes)."""

    def __init__(self, prototypes: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(prototypes.clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -((x.unsqueeze(1) - self.weight.unsqueeze(0)) ** 2).sum(dim=2)


class LeNet5Classic(nn.Module):
    """LeNet-5 (LeCun et al. 1998) with top-level modules C1, S2, C3, S4, C5, F6, output."""

    def __init__(self) -> None:
        super().__init__()
        self.C1 = Conv2dAct(1, 6, 5, activation="scaled_tanh")
        self.S2 = Subsampling(6)
        self.C3 = PartialConv2d(C3_CONNECTIONS, 6, 5)
        self.S4 = Subsampling(16)
        self.C5 = Conv2dAct(16, 120, 5, activation="scaled_tanh")
        self.F6 = LinearAct(120, 84, activation="scaled_tanh")
        self.output = RBFOutput(digit_prototypes())
        for layer in (self.C1, self.C5, self.F6):
            bound = 2.4 / layer.weight[0].numel()
            nn.init.uniform_(layer.weight, -bound, bound)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.S4(self.C3(self.S2(self.C1(x))))
        x = self.C5(x).flatten(1)
        return self.output(self.F6(x))

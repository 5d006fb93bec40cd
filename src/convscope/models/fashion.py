"""The four Fashion-MNIST architectures the study compares (architectures-hidden-umap).

Transcribed from the reference's Keras code: 32-channel convolutions with 2x2
kernels (3x3 in the inception branches), ``same`` padding, he-normal init; blocks
end in 2x2 max-pooling and dropout 0.2; then ``flat1`` -> dense 128 ``hidden`` ->
relu -> dense 10 ``end``. Module names are the reference's layer names; the ones
the reference leaves to Keras (batch norms, adds, concatenations) take the names of
the reference's variables (``batc1``, ``add1``, ``conc1``). The reference calls the
fourth pooling layer of ``inception`` just ``pool``; here it is ``pool4``.

Parameter totals equal Keras' for the reference code (BatchNorm moving statistics
counted as non-trainable): sequential 59,082; inception 169,130; residual 59,466
(192 non-trainable); inception-residual 106,410 (384 non-trainable).

The models output logits; the reference's ``end`` layer has a softmax, which
convscope applies when it reports probabilities.
"""

from __future__ import annotations

import torch
from torch import nn

from convscope.models.layers import Add, Concat, SameConv2d, he_normal_, keras_batchnorm

WIDTH = 32
DROPOUT = 0.2


def conv(in_channels: int, kernel: int) -> SameConv2d:
    """A 32-channel ``same``-padded convolution with Keras' he-normal init and zero bias."""
    layer = SameConv2d(in_channels, WIDTH, kernel)
    he_normal_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class _FashionNet(nn.Module):
    """Shared head (``flat1`` -> ``hidden`` -> relu -> ``end``) and pooling blocks."""

    def _add_head(self, features: int, num_classes: int, act_name: str) -> None:
        self.flat1 = nn.Flatten()
        self.hidden = nn.Linear(features, 128)
        self.add_module(act_name, nn.ReLU())
        self.end = nn.Linear(128, num_classes)
        for dense in (self.hidden, self.end):
            nn.init.xavier_uniform_(dense.weight)
            nn.init.zeros_(dense.bias)
        self._head_act = act_name

    def _add_pool_drop(self, index: int, pool_name: str | None = None) -> None:
        self.add_module(pool_name or f"pool{index}", nn.MaxPool2d(2))
        self.add_module(f"drop{index}", nn.Dropout(DROPOUT))

    def _pool_drop(self, x: torch.Tensor, index: int, pool_name: str | None = None) -> torch.Tensor:
        x = self.get_submodule(pool_name or f"pool{index}")(x)
        return self.get_submodule(f"drop{index}")(x)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hidden(self.flat1(x))
        return self.end(self.get_submodule(self._head_act)(x))


class SequentialNet(_FashionNet):
    """Three plain blocks of two 2x2 convolutions, relu, pool, dropout (59,082 params)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        for block in (1, 2, 3):
            self.add_module(
                f"conv2D_{2 * block - 1}", conv(in_channels if block == 1 else WIDTH, 2)
            )
            self.add_module(f"conv2D_{2 * block}", conv(WIDTH, 2))
            self.add_module(f"acti{block}", nn.ReLU())
            self._add_pool_drop(block)
        self._add_head(3 * 3 * WIDTH, num_classes, "acti4")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in (1, 2, 3):
            x = self.get_submodule(f"conv2D_{2 * block - 1}")(x)
            x = self.get_submodule(f"conv2D_{2 * block}")(x)
            x = self._pool_drop(self.get_submodule(f"acti{block}")(x), block)
        return self._head(x)


class InceptionNet(_FashionNet):
    """Three inception blocks: a 2x2 and a 3x3 branch, concatenated (169,130 params)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        for block in (1, 2, 3):
            block_in = in_channels if block == 1 else 2 * WIDTH
            for branch, kernel in ((2 * block - 1, 2), (2 * block, 3)):
                self.add_module(f"conv2D_{2 * branch - 1}", conv(block_in, kernel))
                self.add_module(f"conv2D_{2 * branch}", conv(WIDTH, kernel))
                self.add_module(f"acti{branch}", nn.ReLU())
                self._add_pool_drop(branch)
            self.add_module(f"conc{block}", Concat())
        self._add_head(3 * 3 * 2 * WIDTH, num_classes, "acti7")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in (1, 2, 3):
            outputs = []
            for branch in (2 * block - 1, 2 * block):
                y = self.get_submodule(f"conv2D_{2 * branch - 1}")(x)
                y = self.get_submodule(f"conv2D_{2 * branch}")(y)
                outputs.append(self._pool_drop(self.get_submodule(f"acti{branch}")(y), branch))
            x = self.get_submodule(f"conc{block}")(*outputs)
        return self._head(x)


class ResidualNet(_FashionNet):
    """Three residual blocks: conv, BN, relu, conv, added to the shortcut (59,466 params).

    The first block's shortcut is its first convolution's output (the input has one
    channel); the later blocks add the block input itself.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        for block in (1, 2, 3):
            self.add_module(
                f"conv2D_{2 * block - 1}", conv(in_channels if block == 1 else WIDTH, 2)
            )
            self.add_module(f"batc{block}", keras_batchnorm(WIDTH))
            self.add_module(f"acti{block}", nn.ReLU())
            self.add_module(f"conv2D_{2 * block}", conv(WIDTH, 2))
            self.add_module(f"add{block}", Add())
            self._add_pool_drop(block)
        self._add_head(3 * 3 * WIDTH, num_classes, "acti4")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in (1, 2, 3):
            first = self.get_submodule(f"conv2D_{2 * block - 1}")(x)
            y = self.get_submodule(f"acti{block}")(self.get_submodule(f"batc{block}")(first))
            y = self.get_submodule(f"conv2D_{2 * block}")(y)
            shortcut = first if block == 1 else x
            x = self._pool_drop(self.get_submodule(f"add{block}")(shortcut, y), block)
        return self._head(x)


class InceptionResidualNet(_FashionNet):
    """Inception branches (2x2 and 3x3, each conv-BN-relu-conv) summed with the shortcut.

    106,410 params. As in the reference, block 1 adds the 2x2 branch's first conv
    output to both branches' outputs; later blocks add the block input.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        for block in (1, 2, 3):
            block_in = in_channels if block == 1 else WIDTH
            for branch, kernel in ((2 * block - 1, 2), (2 * block, 3)):
                self.add_module(f"conv2D_{2 * branch - 1}", conv(block_in, kernel))
                self.add_module(f"batc{branch}", keras_batchnorm(WIDTH))
                self.add_module(f"acti{branch}", nn.ReLU())
                self.add_module(f"conv2D_{2 * branch}", conv(WIDTH, kernel))
            self.add_module(f"add{block}", Add())
            self._add_pool_drop(block)
        self._add_head(3 * 3 * WIDTH, num_classes, "acti7")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in (1, 2, 3):
            firsts, outputs = [], []
            for branch in (2 * block - 1, 2 * block):
                first = self.get_submodule(f"conv2D_{2 * branch - 1}")(x)
                y = self.get_submodule(f"acti{branch}")(self.get_submodule(f"batc{branch}")(first))
                firsts.append(first)
                outputs.append(self.get_submodule(f"conv2D_{2 * branch}")(y))
            shortcut = firsts[0] if block == 1 else x
            x = self._pool_drop(self.get_submodule(f"add{block}")(shortcut, *outputs), block)
        return self._head(x)

"""LeNet-style MNIST models of the references, with Keras' layer names.

- :class:`LeNet` (``lenet``): the LeNet-like net of lenet-kernels-mnist (conv 20@5x5
  same, max-pool, conv 50@5x5 valid, max-pool, dense 500, dense 10): 656,080 parameters.
- :class:`LeNet5` (``lenet5``): the common Keras simplification of LeNet-5 on 28x28
  (lenet5-model-features-kernels): 44,426 parameters.

Both output logits; the references end in a softmax, which convscope applies when
it reports probabilities.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from convscope.models.layers import Conv2dAct, LinearAct, glorot_init


class LeNet(nn.Sequential):
    """LeNet-like: conv 20@5x5 same -> pool -> conv 50@5x5 -> pool -> dense 500 -> dense 10."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__(
            OrderedDict(
                conv2d_1=Conv2dAct(in_channels, 20, 5, padding="same", activation="relu"),
                max_pooling2d_1=nn.MaxPool2d(2),
                conv2d_2=Conv2dAct(20, 50, 5, activation="relu"),
                max_pooling2d_2=nn.MaxPool2d(2),
                flatten_1=nn.Flatten(),
                dense_1=LinearAct(50 * 5 * 5, 500, activation="relu"),
                dense_2=nn.Linear(500, num_classes),
            )
        )
        glorot_init(self)


class LeNet5(nn.Sequential):
    """Keras LeNet-5 on 28x28: conv 6@5x5 -> pool -> conv 16@5x5 -> pool -> 120 -> 84 -> 10.

    The reference initialises the convolutions uniformly in [-0.05, 0.05] (Keras
    ``'uniform'``) and the dense layers with glorot uniform; so does this.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__(
            OrderedDict(
                conv2d_1=Conv2dAct(in_channels, 6, 5, activation="relu"),
                max_pooling2d_1=nn.MaxPool2d(2),
                conv2d_2=Conv2dAct(6, 16, 5, activation="relu"),
                max_pooling2d_2=nn.MaxPool2d(2),
                flatten_1=nn.Flatten(),
                dense_1=LinearAct(16 * 4 * 4, 120, activation="relu"),
                dense_2=LinearAct(120, 84, activation="relu"),
                dense_3=nn.Linear(84, num_classes),
            )
        )
        glorot_init(self)
        for conv in (self.conv2d_1, self.conv2d_2):
            nn.init.uniform_(conv.weight, -0.05, 0.05)

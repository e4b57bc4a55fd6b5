"""
Image encoders of BOOM's world model: TD-MPC2's pixel encoder (four conv layers, pixels scaled
inside the network, random-shift augmentation while training) and the encoder of ``Dict``
observations that mixes images and vectors.

The encoders take the policy's flat observation vectors ``[..., obs_dim]`` (images flattened
channel-first, in the observation space's key order) and unflatten them themselves, so that the
planner, the losses and the replay buffer keep one observation layout for states and pixels.
"""

from collections.abc import Callable

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from torch import nn

# TD-MPC2's pixel encoder: (kernel, stride) of its four conv layers.
CONV_LAYERS: tuple[tuple[int, int], ...] = ((7, 2), (5, 2), (3, 2), (3, 1))
# Smallest square image the four layers above leave at least one output pixel of.
MIN_IMAGE_SIZE = 39
# TD-MPC2's: 32 channels, shifts of up to 3 pixels (its ShiftAug's pad).
DEFAULT_IMAGE_ENCODER_KWARGS: dict[str, int] = dict(num_channels=32, shift_pad=3)


def conv_output_size(size: int, layers: tuple[tuple[int, int], ...] = CONV_LAYERS) -> int:
    """Side length after the conv layers (no padding) of an input of side ``size``."""
    for kernel, stride in layers:
        size = (size - kernel) // stride + 1
    return size


def image_keys(observation_space: spaces.Space) -> list[str]:
    """Keys of the image entries (uint8 ``Box`` of rank 3) of a Dict space; ``["observation"]`` for an image Box."""
    if isinstance(observation_space, spaces.Dict):
        return [key for key, space in observation_space.spaces.items() if is_image_space(space, check_channels=False)]
    return ["observation"] if is_image_space(observation_space, check_channels=False) else []


def has_image_observations(observation_space: spaces.Space) -> bool:
    """Whether the space is an image Box or a Dict with at least one image entry."""
    return len(image_keys(observation_space)) > 0


def check_image_space(key: str, space: spaces.Space) -> None:
    """
    Raise a clear error, naming the fix, for an image space the pixel encoder cannot take.

    Images must be uint8, channel-first once SB3 wrapped the env (``VecTransposeImage`` moves the
    channels of a channel-last image first), and at least ``MIN_IMAGE_SIZE`` pixels on each side.
    """
    if not isinstance(space, spaces.Box) or len(space.shape) != 3:
        raise TypeError(f"Image observation '{key}' must be a Box of rank 3 (C, H, W) or (H, W, C), got {space}.")
    if space.dtype != np.uint8:
        raise TypeError(
            f"Image observation '{key}' has dtype {space.dtype}; the pixel encoder takes uint8 images in [0, 255] "
            "(it scales them itself). Keep the env's uint8 frames (do not normalize or cast them in a wrapper), "
            "or, for float features that are not pixels, flatten them to a vector."
        )
    channels, height, width = space.shape
    if channels > min(height, width):
        raise ValueError(
            f"Image observation '{key}' of shape {space.shape} is not channel-first after SB3's VecTransposeImage: "
            "its channel axis cannot be told (neither the first nor the last axis is the smallest, of at most 4 "
            "channels per frame x frame stack). Give images as (H, W, C) or (C, H, W) with C <= H, W, e.g. with "
            "gymnasium.wrappers.TransformObservation or by stacking frames with VecFrameStack."
        )
    if min(height, width) < MIN_IMAGE_SIZE:
        raise ValueError(
            f"Image observation '{key}' is {height}x{width}: the pixel encoder (conv 7/2, 5/2, 3/2, 3/1) needs at least "
            f"{MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} pixels. Render larger frames or resize them, e.g. with "
            "gymnasium.wrappers.ResizeObservation(env, (64, 64)) (TD-MPC2's size)."
        )


class RandomShift(nn.Module):
    """
    Random-shift augmentation (DrQ's): pad each image by ``pad`` pixels (replicating the border) and
    crop it back at a random integer offset, independently per image. Identity in eval mode.

    :param pad: largest shift in pixels
    """

    def __init__(self, pad: int):
        super().__init__()
        self.pad = pad

    def forward(self, x: th.Tensor) -> th.Tensor:
        if not self.training or self.pad == 0:
            return x
        n, _, height, width = x.shape
        offsets = th.randint(0, 2 * self.pad + 1, (2, n, 1), device=x.device)
        # Row i of the image padded by ``pad`` and cropped at offset o is row clamp(i + o - pad) of the image:
        # clamped indices read the replicated border without building the padded copy, in any dtype (uint8
        # pixels move a quarter of the bytes of float ones).
        rows = (offsets[0] - self.pad + th.arange(height, device=x.device)).clamp_(0, height - 1)[:, :, None]  # [N, H, 1]
        cols = (offsets[1] - self.pad + th.arange(width, device=x.device)).clamp_(0, width - 1)[:, None, :]  # [N, 1, W]
        batch = th.arange(n, device=x.device)[:, None, None]
        # Advanced indexing on (N, H, W) of the channel-last view gives [N, H, W, C]: channels-last memory,
        # on which PyTorch's CPU convs are faster.
        return x.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"pad={self.pad}"


class PixelEncoder(nn.Module):
    """
    TD-MPC2's pixel encoder: random shift (training only), ``x / 255 - 0.5``, then conv 7x7 stride 2,
    5x5 s2, 3x3 s2, 3x3 s1 with ReLU between them, flattened. On 64x64 images with 32 channels the
    output has 32 * 4 * 4 = 512 features, the latent size of TD-MPC2's 5M model.

    :param image_shape: channel-first shape (C, H, W) of one observation (frames stacked on C)
    :param num_channels: channels of every conv layer
    :param shift_pad: largest random shift in pixels (0: no augmentation)
    """

    def __init__(self, image_shape: tuple[int, ...], num_channels: int = 32, shift_pad: int = 3):
        super().__init__()
        channels, height, width = image_shape
        self.image_shape = (int(channels), int(height), int(width))
        self.shift = RandomShift(shift_pad)
        layers: list[nn.Module] = []
        in_channels = channels
        for i, (kernel, stride) in enumerate(CONV_LAYERS):
            layers.append(nn.Conv2d(in_channels, num_channels, kernel, stride=stride))
            if i < len(CONV_LAYERS) - 1:
                layers.append(nn.ReLU(inplace=True))  # on the conv output, which backward does not keep
            in_channels = num_channels
        self.convs = nn.Sequential(*layers)
        self.output_dim = num_channels * conv_output_size(height) * conv_output_size(width)

    def forward(self, x: th.Tensor) -> th.Tensor:
        """``[N, C * H * W]`` flat pixels in [0, 255] (any dtype) -> ``[N, output_dim]``."""
        x = x.reshape(-1, *self.image_shape)
        x = self.shift(x)  # on raw pixels, as TD-MPC2: the replicated border stays a valid pixel value
        # x / 255 - 0.5 with one new tensor (the float conversion, or the division of float input), then in place.
        scaled = x.div(255.0) if x.dtype == th.float32 else x.float().div_(255.0)
        return self.convs(scaled.sub_(0.5)).flatten(1)


class ObservationEncoder(nn.Module):
    """
    Encoder ``h`` of image (or Dict of image and vector) observations: each image through its own
    :class:`PixelEncoder`, the vectors (concatenated) through the hidden layers of an MLP, the
    features concatenated and mapped to the latent by ``output_layer`` (the state encoder's output
    layer: Linear, LayerNorm, SimNorm). A single image whose conv features already have the latent's
    size goes straight to ``act`` (SimNorm), as in TD-MPC2.

    :param observation_space: channel-first image Box, or Dict of such images and vector Boxes
    :param latent_dim: latent size
    :param vector_encoder: builds the vector branch: ``vector_encoder(in_dim) -> (module, out_dim)``
    :param output_layer: builds the layer from the concatenated features to the latent: ``output_layer(in_dim)``
    :param act: the latent's activation (SimNorm), used alone when no output layer is needed
    :param num_channels: channels of every conv layer
    :param shift_pad: largest random shift in pixels
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        latent_dim: int,
        vector_encoder: Callable[[int], tuple[nn.Module, int]],
        output_layer: Callable[[int], nn.Module],
        act: nn.Module,
        num_channels: int = 32,
        shift_pad: int = 3,
    ):
        super().__init__()
        entries = (
            observation_space.spaces.items()
            if isinstance(observation_space, spaces.Dict)
            else [("observation", observation_space)]
        )
        images = set(image_keys(observation_space))
        # (start, end) of each entry in the flat observation, images first in key order.
        self.image_slices: list[tuple[int, int]] = []
        self.vector_slices: list[tuple[int, int]] = []
        self.pixel_encoders = nn.ModuleList()
        offset = 0
        for key, space in entries:
            size = int(np.prod(space.shape))
            if key in images:
                check_image_space(key, space)
                self.image_slices.append((offset, offset + size))
                self.pixel_encoders.append(PixelEncoder(space.shape, num_channels, shift_pad))
            else:
                self.vector_slices.append((offset, offset + size))
            offset += size
        features = sum(encoder.output_dim for encoder in self.pixel_encoders)
        self.vector_dim = sum(end - start for start, end in self.vector_slices)
        self.vector_mlp: nn.Module | None = None
        if self.vector_dim > 0:
            self.vector_mlp, vector_features = vector_encoder(self.vector_dim)
            features += vector_features
        self.features_dim = features
        self.head = act if features == latent_dim and self.vector_dim == 0 else output_layer(features)

    @property
    def shift_pad(self) -> int:
        return self.pixel_encoders[0].shift.pad

    def forward(self, observation: th.Tensor) -> th.Tensor:
        """Flat observations ``[..., obs_dim]`` -> latents ``[..., latent_dim]``."""
        leading = observation.shape[:-1]
        flat = observation.reshape(-1, observation.shape[-1])
        pixel_parts = zip(self.pixel_encoders, self.image_slices, strict=True)
        parts = [encoder(flat[:, start:end]) for encoder, (start, end) in pixel_parts]
        if self.vector_mlp is not None:
            vectors = th.cat([flat[:, start:end] for start, end in self.vector_slices], dim=-1).float()
            parts.append(self.vector_mlp(vectors))
        features = parts[0] if len(parts) == 1 else th.cat(parts, dim=-1)
        return self.head(features).reshape(*leading, -1)

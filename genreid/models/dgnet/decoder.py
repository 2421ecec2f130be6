"""G(a, s): residual blocks on the structure code with AdaIN whose scales and biases come from
MLPs on the appearance code, then two upsampling stages back to the image."""

from __future__ import annotations

import torch
from torch import nn

from genreid.models.dgnet.blocks import MLP, AdaINResBlock, ConvBlock
from genreid.models.dgnet.config import CODE_PARTS


class Decoder(nn.Module):
    """4 AdaIN residual blocks (C = 8w) -> 2 x [nearest x2, conv 5x5, LayerNorm, LeakyReLU]
    (C/2, C/4) -> 2 conv 3x3 (C/4) -> conv 1x1 -> 3 channels (normalised RGB, no tanh).

    Stripe k of the appearance code (``code_dim`` values) feeds two MLPs, one for the scales
    and one for the biases of block k's two AdaIN layers (8 layers, 8 MLPs in all)."""

    def __init__(self, code_dim: int, channels: int, mlp_dim: int = 512) -> None:
        super().__init__()
        c = channels
        self.blocks = nn.ModuleList(AdaINResBlock(c) for _ in range(CODE_PARTS))
        self.mlp_scale = nn.ModuleList(MLP(code_dim, mlp_dim, 2 * c) for _ in self.blocks)
        self.mlp_bias = nn.ModuleList(MLP(code_dim, mlp_dim, 2 * c) for _ in self.blocks)
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            ConvBlock(c, c // 2, 5, norm="ln"),
            nn.Upsample(scale_factor=2, mode="nearest"),
            ConvBlock(c // 2, c // 4, 5, norm="ln"),
            ConvBlock(c // 4, c // 4, 3),
            ConvBlock(c // 4, c // 4, 3),
            ConvBlock(c // 4, 3, 1, act=False),
        )

    @property
    def num_adain_params(self) -> int:
        """What the AdaIN layers consume: a scale and a bias per channel of each layer."""
        return sum(b.num_params for b in self.blocks)

    def adain_params(self, code: torch.Tensor) -> torch.Tensor:
        """B x num_adain_params from the code (B x C x 4 x 1): per block, its scales then its
        biases, blocks in order."""
        stripes = code.flatten(2)  # B x C x 4
        out = []
        for k, (ms, mb) in enumerate(zip(self.mlp_scale, self.mlp_bias, strict=True)):
            out += [ms(stripes[:, :, k]), mb(stripes[:, :, k])]
        return torch.cat(out, dim=1)

    def forward(self, code: torch.Tensor, structure: torch.Tensor) -> torch.Tensor:
        params = self.adain_params(code)
        if params.shape[1] != self.num_adain_params:
            raise ValueError(
                f"the MLPs give {params.shape[1]} AdaIN parameters, the blocks take "
                f"{self.num_adain_params}"
            )
        x, at = structure, 0
        for block in self.blocks:
            n = 2 * block.channels
            x = block(x, params[:, at : at + n], params[:, at + n : at + 2 * n])
            at += 2 * n
        return self.up(x)

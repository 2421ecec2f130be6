"""DG-Net (Zheng et al., CVPR 2019): appearance and structure encoders, an AdaIN decoder, a
multi-scale patch discriminator and the losses of the paper's Eq. 10 (docs/TRAINING.md)."""

from __future__ import annotations

from genreid.models.dgnet.config import DGNetModelConfig
from genreid.models.dgnet.network import DGNetNetworks, DGNetReID, build_dgnet, load_dgnet_run

__all__ = ["DGNetModelConfig", "DGNetNetworks", "DGNetReID", "build_dgnet", "load_dgnet_run"]

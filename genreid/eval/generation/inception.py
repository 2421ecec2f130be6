"""The FID network: TensorFlow's Inception-v3 as ported by pytorch-fid.

``find_inception_weights`` looks where pytorch-fid keeps the weights (``--inception-weights``,
``$GENREID_INCEPTION_WEIGHTS``, torch hub's cache); when they are in none of these places and a
network is reachable it fetches pytorch-fid's file into torch hub's cache and keeps it only if
its sha256 starts with the prefix in its name (torch.hub's ``check_hash`` convention).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchvision.models.inception as tvi
from torch import nn

from genreid.core.checkpoint import load_checkpoint
from genreid.eval.generation.extractors import FeatureExtractor, GenMetricsError

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_NAME
)
DOWNLOAD_TIMEOUT_S = 30.0

Downloader = Callable[[str, Path], None]
"""Writes the bytes at a URL to a local file; raises OSError (URLError) when it cannot."""


def urllib_download(url: str, dst: Path) -> None:
    """The default downloader: ``urllib`` with a timeout, so an unreachable network fails fast."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(dst, "wb") as fh:
        while chunk := response.read(1 << 20):
            fh.write(chunk)


def hub_checkpoints() -> Path:
    """torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``), where pytorch-fid looks."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hash_prefix(name: str) -> str | None:
    """The sha256 prefix in a file name such as ``pt_inception-2015-12-05-6726825d.pth``."""
    match = torch.hub.HASH_REGEX.search(name)
    return match.group(1) if match and match.group(1) else None


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_inception_weights(
    url: str | None = None,
    folder: str | Path | None = None,
    download: Downloader | None = None,
) -> Path:
    """Download ``url`` (pytorch-fid's file) into ``folder`` (torch hub's checkpoints) and verify
    its hash prefix.

    The file is written to a temporary name beside its destination and renamed into place only
    when its sha256 starts with the prefix in its name, so a wrong or cut download never sits
    where the next run would load it. Network failures raise ``OSError``; a wrong hash raises
    :class:`GenMetricsError`.
    """
    url = url or FID_WEIGHTS_URL
    dest = Path(folder) if folder is not None else hub_checkpoints()
    dest = dest / url.rsplit("/", 1)[-1]
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        sys.stderr.write(f"downloading the FID Inception weights from {url} to {dest}\n")
        (download or urllib_download)(url, tmp)
        expected, digest = hash_prefix(dest.name), sha256_of(tmp)
        if expected and not digest.startswith(expected):
            raise GenMetricsError(
                f"refusing the file downloaded from {url}: its sha256 {digest[:16]}... does not "
                f"start with {expected} (the prefix in its name), so it is not pytorch-fid's "
                f"{dest.name}; nothing was saved. Download it by hand and pass "
                "--inception-weights PATH."
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def find_inception_weights(
    path: str | Path | None = None,
    download: bool | Downloader = True,
) -> Path:
    """The FID Inception weights: ``path``, $GENREID_INCEPTION_WEIGHTS or torch hub's cache,
    fetched into the cache when missing and ``download`` allows (a function: the downloader)."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise GenMetricsError(
                f"Inception weights not found at {p}. Pass the pytorch-fid file "
                f"{FID_WEIGHTS_NAME} (pytorch-fid users have it under "
                "~/.cache/torch/hub/checkpoints/), or use --feature-extractor reid:MODEL."
            )
        return p
    candidates = []
    if os.environ.get("GENREID_INCEPTION_WEIGHTS"):
        candidates.append(Path(os.environ["GENREID_INCEPTION_WEIGHTS"]).expanduser())
    candidates.append(hub_checkpoints() / FID_WEIGHTS_NAME)
    for c in candidates:
        if c.is_file():
            return c
    if download is False:
        why = "downloading is off (--no-download)"
    else:
        try:
            return fetch_inception_weights(download=None if download is True else download)
        except OSError as exc:  # no network (URLError), a proxy refusing, a read-only cache
            why = f"downloading {FID_WEIGHTS_URL} failed ({getattr(exc, 'reason', None) or exc})"
    raise GenMetricsError(
        f"no Inception weights: looked for {FID_WEIGHTS_NAME} at "
        f"{', '.join(str(c) for c in candidates)}, and {why}. Put that file (the one "
        f"pytorch-fid uses, from {FID_WEIGHTS_URL}) at {candidates[-1]}, pass "
        "--inception-weights PATH, set GENREID_INCEPTION_WEIGHTS, use --feature-extractor "
        "reid:MODEL for a non-comparable distance, or --ssim-only."
    )


def _fid_blocks() -> tuple[type, type, type, type]:
    class FIDInceptionA(tvi.InceptionA):
        """InceptionA with TF's average pool (padding excluded from the mean)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b1 = self.branch1x1(x)
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            bp = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
            return torch.cat([b1, b5, b3, bp], 1)

    class FIDInceptionC(tvi.InceptionC):
        """InceptionC with TF's average pool."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b1 = self.branch1x1(x)
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            bd = self.branch7x7dbl_1(x)
            for layer in (
                self.branch7x7dbl_2,
                self.branch7x7dbl_3,
                self.branch7x7dbl_4,
                self.branch7x7dbl_5,
            ):
                bd = layer(bd)
            bp = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
            return torch.cat([b1, b7, bd, bp], 1)

    def _e(
        self: Any, x: torch.Tensor, pool: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        return torch.cat([b1, b3, bd, self.branch_pool(pool(x))], 1)

    class FIDInceptionE1(tvi.InceptionE):
        """First InceptionE with TF's average pool."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return _e(self, x, lambda t: F.avg_pool2d(t, 3, 1, 1, count_include_pad=False))

    class FIDInceptionE2(tvi.InceptionE):
        """Second InceptionE: the TF graph max-pools here."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return _e(self, x, lambda t: F.max_pool2d(t, 3, 1, 1))

    return FIDInceptionA, FIDInceptionC, FIDInceptionE1, FIDInceptionE2


def fid_inception_v3(state_dict: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """torchvision's Inception-v3 (no weights) patched into the TF FID graph, as pytorch-fid."""
    A, C, E1, E2 = _fid_blocks()
    net = tvi.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    net.Mixed_5b, net.Mixed_5c, net.Mixed_5d = A(192, 32), A(256, 64), A(288, 64)
    net.Mixed_6b, net.Mixed_6c = C(768, 128), C(768, 160)
    net.Mixed_6d, net.Mixed_6e = C(768, 160), C(768, 192)
    net.Mixed_7b, net.Mixed_7c = E1(1280), E2(2048)
    if state_dict is not None:
        net.load_state_dict(state_dict)
    return net


class InceptionPool(nn.Module):
    """2048-d pool features of the FID Inception: input in [0, 1], resized to 299, to [-1, 1]."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (299, 299):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        n = self.net
        x = F.max_pool2d(n.Conv2d_2b_3x3(n.Conv2d_2a_3x3(n.Conv2d_1a_3x3(x))), 3, 2)
        x = F.max_pool2d(n.Conv2d_4a_3x3(n.Conv2d_3b_1x1(x)), 3, 2)
        for name in (
            "Mixed_5b",
            "Mixed_5c",
            "Mixed_5d",
            "Mixed_6a",
            "Mixed_6b",
            "Mixed_6c",
            "Mixed_6d",
            "Mixed_6e",
            "Mixed_7a",
            "Mixed_7b",
            "Mixed_7c",
        ):
            x = getattr(n, name)(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def inception_extractor(
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    download: bool | Downloader = True,
) -> FeatureExtractor:
    """The FID feature extractor from pytorch-fid's weights file (fetched once when missing)."""
    path = find_inception_weights(weights, download)
    try:
        state = load_checkpoint(path)
        net = fid_inception_v3(state)
    except (RuntimeError, KeyError) as exc:
        raise GenMetricsError(
            f"{path} is not the FID Inception state dict ({FID_WEIGHTS_NAME}): "
            f"{str(exc).splitlines()[0]}"
        ) from None
    model = InceptionPool(net).to(device).eval()
    return FeatureExtractor(
        "inception-v3-fid",
        model,
        (299, 299),
        comparable=True,
        notes=[f"FID Inception weights: {path}"],
    )

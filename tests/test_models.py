"""Re-ID models: outputs in train/eval mode, parameter groups, PATH pretrained loading."""

from __future__ import annotations

import pytest
import torch

from genreid.core.errors import ConfigError
from genreid.models import ModelConfig, PretrainedError, build_model


@pytest.mark.parametrize("arch", ["ide_tiny", "bottleneck_tiny"])
def test_train_and_eval_outputs(arch):
    m = build_model(ModelConfig(arch=arch), 7)
    x = torch.randn(2, 3, 64, 32)
    logits, feat = m(x)
    assert logits.shape == (2, 7) and feat.shape == (2, m.feat_dim) == (2, 128)
    m.eval()
    assert m(x).shape == (2, 128)
    head = {id(p) for p in m.head_parameters()}
    body = {id(p) for p in m.backbone_parameters()}
    assert head and body and not head & body
    assert len(head) + len(body) == len(list(m.parameters()))


def test_spec_defaults():
    s = ModelConfig(arch="ide").resolved()
    assert (s.backbone, s.width, s.dropout) == ("resnet50", 64, 0.75)
    s = ModelConfig(arch="bottleneck", backbone="densenet121").resolved()
    assert s.dropout == 0.5
    s = ModelConfig(arch="ide_tiny").resolved()
    assert (s.arch, s.backbone, s.width, s.dropout) == ("ide", "resnet18", 16, 0.75)
    with pytest.raises(ConfigError, match="model.arch.*Known: ide, bottleneck"):
        ModelConfig(arch="resnet").resolved()


def test_pretrained_from_path(tmp_path):
    src = build_model(ModelConfig(arch="ide_tiny"), 3)
    torch.save(src.backbone.state_dict(), tmp_path / "bb.pt")
    dst = build_model(ModelConfig(arch="bottleneck_tiny", pretrained=str(tmp_path / "bb.pt")), 5)
    for k, v in src.backbone.state_dict().items():
        assert torch.equal(v, dst.backbone.state_dict()[k])
    # a whole genreid model (backbone.* keys) loads too
    torch.save({"modules": {"model": src.state_dict()}}, tmp_path / "ckpt.pt")
    build_model(ModelConfig(arch="ide_tiny", pretrained=str(tmp_path / "ckpt.pt")), 9)
    # ... and pretrained weights are not loaded again when a trained run is rebuilt
    cfg = ModelConfig(arch="ide_tiny", pretrained=str(tmp_path / "gone.pt"))
    assert build_model(cfg, 3, load_pretrained=False).num_outputs == 3


def test_pretrained_errors(tmp_path):
    with pytest.raises(PretrainedError, match="does not exist"):
        build_model(ModelConfig(arch="ide_tiny", pretrained=str(tmp_path / "none.pt")), 3)
    src = build_model(ModelConfig(arch="ide_tiny", width=8), 3)
    torch.save(src.backbone.state_dict(), tmp_path / "w8.pt")
    with pytest.raises(PretrainedError, match="shape mismatch"):
        build_model(ModelConfig(arch="ide_tiny", pretrained=str(tmp_path / "w8.pt")), 3)
    sd = src.backbone.state_dict()
    sd.pop("conv1.weight")
    torch.save(sd, tmp_path / "partial.pt")
    with pytest.raises(PretrainedError, match="missing key"):
        build_model(
            ModelConfig(arch="ide_tiny", width=8, pretrained=str(tmp_path / "partial.pt")), 3
        )

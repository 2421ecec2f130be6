"""Re-ID models: outputs in train/eval mode, parameter groups, PATH pretrained loading."""

from __future__ import annotations

import pytest
import torch

from genreid.models import ModelSpec, PretrainedError, build_model


@pytest.mark.parametrize("arch", ["ide_tiny", "bottleneck_tiny"])
def test_train_and_eval_outputs(arch):
    m = build_model(ModelSpec(arch=arch, num_outputs=7))
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
    s = ModelSpec(arch="ide").resolved()
    assert (s.backbone, s.width, s.dropout) == ("resnet50", 64, 0.75)
    s = ModelSpec(arch="bottleneck", backbone="densenet121").resolved()
    assert s.dropout == 0.5
    with pytest.raises(ValueError, match="ide, bottleneck"):
        ModelSpec(arch="resnet").resolved()


def test_pretrained_from_path(tmp_path):
    src = build_model(ModelSpec(arch="ide_tiny", num_outputs=3))
    torch.save(src.backbone.state_dict(), tmp_path / "bb.pt")
    dst = build_model(ModelSpec(arch="bottleneck_tiny", num_outputs=5), str(tmp_path / "bb.pt"))
    for k, v in src.backbone.state_dict().items():
        assert torch.equal(v, dst.backbone.state_dict()[k])
    # a whole genreid model (backbone.* keys) loads too
    torch.save({"model": src.state_dict()}, tmp_path / "ckpt.pt")
    build_model(ModelSpec(arch="ide_tiny", num_outputs=9), str(tmp_path / "ckpt.pt"))


def test_pretrained_errors(tmp_path):
    with pytest.raises(PretrainedError, match="does not exist"):
        build_model(ModelSpec(arch="ide_tiny", num_outputs=3), str(tmp_path / "none.pt"))
    src = build_model(ModelSpec(arch="ide_tiny", width=8, num_outputs=3))
    torch.save(src.backbone.state_dict(), tmp_path / "w8.pt")
    with pytest.raises(PretrainedError, match="shape mismatch"):
        build_model(ModelSpec(arch="ide_tiny", num_outputs=3), str(tmp_path / "w8.pt"))
    sd = src.backbone.state_dict()
    sd.pop("conv1.weight")
    torch.save(sd, tmp_path / "partial.pt")
    with pytest.raises(PretrainedError, match="missing key"):
        build_model(
            ModelSpec(arch="ide_tiny", width=8, num_outputs=3), str(tmp_path / "partial.pt")
        )

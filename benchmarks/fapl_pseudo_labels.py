"""Where a trained FAPL run puts its generated images: each image's pseudo label is the
argmax cosine between its feature and the class centers saved in the checkpoint (FAPL Eq. 3-4),
computed with the final network. Prints, per run, how many identities receive at least one
generated image and the counts of the five most-labelled ones (a collapse is one identity).

    python benchmarks/fapl_pseudo_labels.py RUN [RUN ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genreid.core.checkpoint import load_checkpoint  # noqa: E402
from genreid.data.dataset import ImageDataset  # noqa: E402
from genreid.data.generated import read_generated  # noqa: E402
from genreid.data.transforms import test_transform  # noqa: E402
from genreid.eval.ranking.extract import extract_features, load_trained_model  # noqa: E402


def pseudo_label_counts(run: Path) -> torch.Tensor:
    """Generated images per identity (K) under the run's final features and centers."""
    model, data, _, device = load_trained_model(run, overrides=["train.device=cpu"])
    centers = load_checkpoint(run / "checkpoints" / "last.pt")["modules"]["labels"]
    c = centers.get("center.centers")
    if c is None:
        raise SystemExit(f"{run}: no class centers in its checkpoint (not a FAPL run)")
    ds = ImageDataset(read_generated(data.generated), test_transform(data.size))
    feats = extract_features(model, ds, 128, device)  # eval mode: the pooled feature
    cos = torch.nn.functional.normalize(feats, dim=1) @ torch.nn.functional.normalize(c, dim=1).T
    return torch.bincount(cos.argmax(1), minlength=c.shape[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for run in args.runs:
        counts = pseudo_label_counts(run)
        top = counts.sort(descending=True).values[:5].tolist()
        print(f"{run}: {int(counts.sum())} generated images on {int((counts > 0).sum())} "
              f"identities; top 5: {top}")  # fmt: skip


if __name__ == "__main__":
    main()

"""``genreid gan``: train DCGAN / WGAN-GP generators, sample images, score generation quality."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import typer

from genreid.cli.common import fail, parse_size
from genreid.cli.train import run_training

app = typer.Typer(
    help="Train GANs on re-ID training images, sample them, and measure FID / SSIM.",
    no_args_is_help=True,
)


@app.command("train")
def train(
    overrides: list[str] = typer.Argument(
        None, help="key=value overrides, e.g. data.root=/data/Market train.epochs=5."
    ),
    config: str = typer.Option(
        None,
        "--config",
        "-c",
        help="A shipped GAN config (e.g. dcgan_tiny, `genreid config list`) or a YAML file. "
        "With --resume it defaults to RUN/config.yaml.",
    ),
    out: str = typer.Option(..., "--out", help="Run folder to create (or resume)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue from RUN/checkpoints/last.pt (models, optimisers, RNG)."
    ),
) -> None:
    """Train one GAN, or one per cluster with data.clusters=FILE.csv (path,cluster)."""
    run_training(config, overrides, Path(out), resume, task_name="gan")


@app.command("sample")
def sample(
    run: str = typer.Option(..., "--run", help="A `gan train` run folder (plain or per-cluster)."),
    num: int = typer.Option(..., "--num", "-n", help="Images to write (split over clusters)."),
    out: str = typer.Option(..., "--out", help="Folder for the JPEGs and manifest.csv."),
    size: str = typer.Option(None, "--size", help="Resize to HxW, e.g. 256x128 (default: native)."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same images."),
    grid: str = typer.Option(
        None,
        "--grid",
        help="Also write a PNG: rows of real training images (labelled real) above rows of "
        "the first images written (labelled generated).",
    ),
    batch_size: int = typer.Option(64, "--batch-size", help="Images per forward pass."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
) -> None:
    """Write generated images and a manifest.csv (path, cluster, seed) for re-ID training;
    warns when the run has not finished training."""
    from genreid.engine.gan_sampling import SamplingWarning, sample_to_folder  # lazy: --help

    def show(message, category, *args, **kwargs):  # type: ignore[no-untyped-def]
        if issubclass(category, SamplingWarning):
            typer.echo(f"warning: {message}", err=True)  # before sampling starts
        else:
            default(message, category, *args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("always", SamplingWarning)
        default, warnings.showwarning = warnings.showwarning, show
        manifest = sample_to_folder(
            run, num, out, size=parse_size(size), seed=seed, batch_size=batch_size, grid=grid,
            device=device,
        )  # fmt: skip
    typer.echo(f"wrote {num} images and {manifest}")
    if grid:
        typer.echo(f"wrote {grid}")


@app.command("metrics")
def metrics(
    real: str = typer.Option(
        ...,
        "--real",
        help="Real images: a folder, a .txt list (a GAN run's train_images.txt or "
        "measure_images.txt), or DATASET:ROOT for its training split.",
    ),
    fake: str = typer.Option(
        ..., "--fake", help="Generated images (folder, manifest.csv optional)."
    ),
    fid: bool = typer.Option(
        False,
        "--fid/--no-fid",
        help="Also the FID in Inception-v3's space (its weights are a download; "
        "--inception-weights implies it).",
    ),
    inception_weights: str = typer.Option(
        None,
        "--inception-weights",
        help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth. Default: "
        "$GENREID_INCEPTION_WEIGHTS or torch hub's cache, fetched there (hash-checked) when "
        "missing and a network is reachable.",
    ),
    download: bool = typer.Option(
        True, "--download/--no-download", help="Fetch missing Inception weights (once)."
    ),
    feature_extractor: str = typer.Option(
        None,
        "--feature-extractor",
        help="reid:RUN (a `genreid train` run folder) or reid:MODEL (.pt2 from "
        "torch.export.save, or TorchScript): also the Frechet distance in that re-ID feature "
        "space (not comparable with published FIDs).",
    ),
    ssim_only: bool = typer.Option(False, "--ssim-only", help="Only SSIM diversity."),
    ssim_pairs: int = typer.Option(1000, "--ssim-pairs", help="Image pairs for SSIM."),
    ssim_size: str = typer.Option("128x64", "--ssim-size", help="HxW images are resized to."),
    seed: int = typer.Option(0, "--seed", help="Seed for the SSIM pairs and KID's subsets."),
    batch_size: int = typer.Option(32, "--batch-size"),
    device: str = typer.Option("cpu", "--device"),
    out: str = typer.Option(None, "--out", help="Also write the results to this JSON file."),
) -> None:
    """Quality of generated images: Frechet distance, KID, precision and recall in genreid's
    synthetic-backbone space (no download; `generated`, with the real set's halves as the
    reference), SSIM diversity, and on request the FID (Inception-v3)."""
    from genreid.core.files import write_json_atomic  # lazy: keeps `genreid --help` fast
    from genreid.eval.generation.gen_metrics import compute_metrics, image_set
    from genreid.eval.generation.gen_quality import check_counts, measure_images

    if inception_weights and feature_extractor:
        fail("pass either --inception-weights or --feature-extractor, not both")
    real_paths, fake_paths = image_set(real).paths, image_set(fake).paths
    if not ssim_only:
        check_counts(len(real_paths), len(fake_paths))  # before anything is computed
    result = compute_metrics(
        real,
        fake,
        inception_weights=inception_weights,
        feature_extractor=feature_extractor,
        ssim_only=ssim_only,
        ssim_pairs=ssim_pairs,
        ssim_size=parse_size(ssim_size),
        seed=seed,
        batch_size=batch_size,
        device=device,
        download=download,
        fid=fid or bool(inception_weights),
    )
    if not ssim_only:
        generated = measure_images(real_paths, fake_paths, device, batch_size, seed=seed)
        result = {"generated": generated, **result}
    if out:
        write_json_atomic(result, out)
    typer.echo(json.dumps(result, indent=2))


@app.command("measure")
def measure(
    run: Path = typer.Option(..., "--run", help="A GAN training run folder (per-cluster too)."),
    draws: int = typer.Option(5, "--draws", help="Independent draws of generated images."),
    num: int = typer.Option(
        0, "--num", "-n", help="Generated images per draw (0: as many as the reference)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of draw 0 (draw d: seed + d)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    out: Path = typer.Option(None, "--out", help="Also write the results to this JSON file."),
) -> None:
    """Re-measure a trained GAN over several draws (mean and std) against its held-out images,
    beside as many real training images against them: the score of a perfect generator."""
    from genreid.core.files import write_json_atomic  # lazy: keeps `genreid --help` fast
    from genreid.engine.gan_quality import MEASURES, measure_gan_run  # lazy: as above

    result = measure_gan_run(run, draws, num, seed, device)
    for name, res in result["generators"].items():
        if "skipped" in res:
            typer.echo(f"{name} not measured: {res['skipped']}", err=True)
            continue
        rows = [("generated", res["generated"]), ("real", res.get("real_training_images"))]
        for label, m in rows:
            if m is not None:
                cells = "  ".join(f"{k} {m[k]:.4f} ± {m['std'][k]:.4f}" for k in MEASURES)
                typer.echo(f"{name} {label:9s} {cells}", err=True)
    if out:
        write_json_atomic(result, out)
    typer.echo(json.dumps(result, indent=2))

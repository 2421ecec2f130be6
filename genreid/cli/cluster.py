"""``genreid cluster``: SLSR's k-means step on a trained baseline's features."""

from __future__ import annotations

import typer

from genreid.cli.common import OPTION_HELP, parse_options


def cluster_command(
    run: str = typer.Option(..., "--run", help="A trained baseline run folder."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name (e.g. viper)."),
    root: str = typer.Option(..., "--root", "-r", help="Dataset folder."),
    out: str = typer.Option(..., "--out", help="Folder for the manifests, table and figures."),
    k: str = typer.Option("2-5", "--k", help="Cluster counts: 3, 2-5 or 2,3,5."),
    pick: str = typer.Option(
        "raw", "--pick", help="With several k, pick by the silhouette on raw features or pca2."
    ),
    use_k: int = typer.Option(
        None, "--use-k", help="Write clusters.csv with this k (silhouettes still for every k)."
    ),
    seed: int = typer.Option(0, "--seed", help="k-means and sampling seed."),
    option: list[str] = typer.Option(None, "--option", "-o", help="Parser " + OPTION_HELP),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
) -> None:
    """k-means on the raw features of the training images, silhouettes, identity sets."""
    from rich.console import Console  # lazy: keeps `genreid --help` fast
    from rich.table import Table

    from genreid.engine.clustering import cluster_training_set

    ks = parse_ks(k)
    s = cluster_training_set(
        run, dataset, root, out, ks, seed, pick, parse_options(option), device, use_k
    )
    table = Table(
        title=f"k-means on {s['images']} training images ({s['feature_dim']}-d raw features)"
    )
    cols = ("k", "silhouette (raw features)", "silhouette (2-D PCA)", "AMI identity", "AMI camera")
    for col in (*cols, "cluster sizes"):
        table.add_column(col, justify="right")
    for row in s["silhouette"]:
        mark = " *" if row["k"] == s["k"] else ""
        sizes = " ".join(map(str, row["cluster_sizes"]))
        raw, pca = f"{row['silhouette_raw']:.3f}", f"{row['silhouette_pca2']:.3f}"
        ami = f"{row['ami_identity']:.3f}", f"{row['ami_camera']:.3f}"
        table.add_row(f"{row['k']}{mark}", raw, pca, *ami, sizes)
    console = Console()
    console.print(table)
    sets = s["identity_sets"]
    console.print(
        f"k = {s['k']} ({s['picked_by']}); identity sets: majority {sets['majority']['total']}, "
        f"any {sets['any']['total']} of {s['identities']} identities; wrote {s['manifest']}",
        markup=False, highlight=False,
    )  # fmt: skip


def parse_ks(text: str) -> list[int]:
    """``3`` -> [3], ``2-5`` -> [2, 3, 4, 5], ``2,3,5`` -> [2, 3, 5]."""
    try:
        if "-" in text:
            lo, hi = (int(v) for v in text.split("-"))
            return list(range(lo, hi + 1))
        return sorted({int(v) for v in text.split(",")})
    except ValueError:
        raise typer.BadParameter(f"expected 3, 2-5 or 2,3,5; got {text!r}") from None

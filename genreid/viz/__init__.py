"""genreid.viz: evaluation figures (CMC curves, ranked lists)."""

from genreid.viz.plots import plot_cmc, plot_ranklist, ranked_gallery

__all__ = ["plot_cmc", "plot_ranklist", "ranked_gallery"]

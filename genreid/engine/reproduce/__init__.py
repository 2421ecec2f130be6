"""``genreid reproduce``: the papers' tables as rows × columns of cells, each cell a pipeline of
stages (GAN, samples, re-ID training, evaluation) per split and seed, resumable and parallel.

``spec`` loads a table's file (``genreid/configs/reproduce/*.yaml``), ``plan`` turns it into
jobs, ``runner`` runs them side by side, ``pipeline`` ties it together and writes the table.
"""

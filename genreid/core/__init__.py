"""The bottom layer: errors, typed configs, registries, checkpoints, run folders, devices.

Nothing here imports another genreid package; every other layer may import from here.
"""

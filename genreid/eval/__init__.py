"""genreid.eval: evaluation, in three layers (each a sub-package; see docs/ARCHITECTURE.md).

``ranking`` (re-ID features, distances, CMC/mAP/mINP, re-ranking, protocols), ``generation``
(generated-image quality: FID, SSIM, Fréchet/KID/precision/recall) above it, and ``deploy``
(encoders of a run or an ONNX file, ONNX export, search indexes) above that. This module only
groups them and imports nothing.
"""

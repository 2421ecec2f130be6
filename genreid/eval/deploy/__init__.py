"""genreid.eval.deploy: a trained run in use. Encoders of images from a run folder or an ONNX
file, ``genreid export`` (ONNX, checked against PyTorch), search indexes and ``genreid search``."""

"""genreid.eval.generation: the quality of generated images. Feature spaces for the Fréchet
distance, the FID network, FID/SSIM (``genreid gan metrics``) and the Fréchet distance, KID and
k-NN precision/recall in the synthetic-pedestrian space."""

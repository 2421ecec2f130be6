"""genreid: person re-identification trained with GAN-generated images."""

__version__ = "0.1.0"

"""``python -m genreid.cli`` (the form ``torchrun -m genreid.cli train ...`` uses)."""

from genreid.cli import main

main()

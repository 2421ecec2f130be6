"""``python -m genreid``: the command line."""

from genreid.cli import main

main()

"""`python -m archive.cli`: the command line run as a module (how `serve` starts its background worker)."""

from . import main

main()

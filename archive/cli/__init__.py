"""The `podarchive` command line: a thin layer over the library.

Library errors (PodarchiveError) become one-line messages and exit status 1; usage errors exit 2 (click);
`ingest` exits 1 when some feed or episode failed, after doing all the rest.

The commands live by family: pipeline.py (ingest, index, work, worker, status), reading.py (search, transcript,
takeaways, chapters), site.py (serve) and accounts.py (producer ...); common.py holds what they share.
"""

from __future__ import annotations

import click

from .accounts import producer
from .pipeline import index, ingest, status, work, worker
from .reading import chapters, search, takeaways, transcript
from .site import serve


@click.group()
@click.version_option(package_name="podarchive")
def cli():
    """podarchive: turn podcast feeds into a searchable archive of what their guests said."""


for command in (ingest, status, transcript, index, search, takeaways, chapters, serve, work, worker, producer):
    cli.add_command(command)


def main():
    cli()

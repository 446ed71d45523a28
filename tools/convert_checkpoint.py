#!/usr/bin/env python
"""Checkpoint conversion outside the installed CLI: `tools/convert_checkpoint.py ACTION ...` is
`megageo convert ACTION ...` (consolidate, reshard, inspect)."""

import sys

from megageo.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))

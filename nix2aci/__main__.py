"""``python -m nix2aci``: the same as the ``nix2aci`` command."""

import sys

from .cli import main

sys.exit(main())

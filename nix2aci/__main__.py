"""``python -m nix2aci``: the same as the ``nix2aci`` command."""

import sys

from .commands import main

sys.exit(main())

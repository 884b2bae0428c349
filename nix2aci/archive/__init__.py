"""Tar archives: writing them deterministically (:mod:`.write`, gzip on every core with :mod:`.pgzip`) and
reading them back in bounded memory (:mod:`.read`). Standard library only: the builder writes with it."""

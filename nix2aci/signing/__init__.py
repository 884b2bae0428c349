"""Signing and trust, outside Nix only: GnuPG keys, signatures and verification (:mod:`.openpgp`), the trusted
keys (:mod:`.trust`), files and links replaced atomically (:mod:`.atomic`), and the ``postprocess`` command
that links, GC-roots and signs a build's images (:mod:`.postprocess`). The builder never imports this package."""

"""The builder: what runs inside the Nix build sandbox.

:mod:`.main` is the entry point the derivations run (nix/builder.nix); it reads
the build spec (:mod:`.spec`, :mod:`.closure`), lays out the image's file tree
(:mod:`.tree`, :mod:`.plan`, :mod:`.basics`) and hands it to the format
packages (:mod:`nix2aci.aci.build`, :mod:`nix2aci.oci.bundle`,
:mod:`nix2aci.oci.layout`), which also run here. Everything the builder loads
uses only the standard library, attrs and jsonschema (tests/test_house.py).
"""

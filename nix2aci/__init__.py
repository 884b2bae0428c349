"""nix2aci: container images (appc ACI, OCI) from Nix store closures."""

__version__ = "0.1.0"

# The nix2aci library over a package set: { pkgs } -> { mkACI, ... }.
#
# `pkgs` is nixpkgs or the offline set (./offline); it must provide `system` and
# `nix2aciPython`, the interpreter that runs the builder (see ./package-set.nix).
{ pkgs }:
let
  inherit (import ./builder.nix { inherit pkgs; }) runBuilder command;
  common = import ./common.nix { inherit pkgs; };
in
{
  mkACI = import ./mk-aci.nix { inherit pkgs runBuilder common; };
  buildContainer = import ./build-container.nix { inherit pkgs runBuilder common; };
  buildOCIImage = import ./oci-image.nix { inherit pkgs runBuilder common; };
  # The command line (bin/nix2aci) with the package set's Python.
  nix2aci = command;
}

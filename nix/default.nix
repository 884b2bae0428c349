# The nix2aci library over a package set: { pkgs } -> { mkACI, ... }.
#
# `pkgs` is nixpkgs or the offline set (./offline); it must provide `system` and
# `nix2aciPython`, the interpreter that runs the builder (see ./package-set.nix).
{ pkgs }:
let
  inherit (import ./builder.nix { inherit pkgs; }) runBuilder runStep command;
  common = import ./common.nix { inherit pkgs; };
  types = import ./types.nix "nix2aci";
  # Each function file takes what it names of these.
  given = { inherit pkgs runBuilder runStep common; };
  functions = builtins.mapAttrs (_: file: let f = import file; in f (builtins.intersectAttrs (builtins.functionArgs f) given)) {
    mkACI = ./mk-aci.nix;
    buildContainer = ./build-container.nix;
    buildOCIImage = ./oci-image.nix;
    buildOCIIndex = ./oci-index.nix;
  };
in
builtins.mapAttrs (_: function: function.build) functions // {
  # The command line (bin/nix2aci) with the package set's Python.
  nix2aci = command;

  # Each function's arguments with their documentation: { NAME = { doc; required; }; },
  # and the rootfs basics every function takes. README's tables are checked against them.
  arguments =
    let
      documented = record: builtins.mapAttrs (_: field: { inherit (field) doc; required = !(field ? default); }) record.fields;
    in
    builtins.mapAttrs (_: function: documented function.arguments) functions // {
      rootfs = documented (types.record (common.rootfsArguments types));
    };
}

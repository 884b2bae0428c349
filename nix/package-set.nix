# The package set nix2aci uses: the user's nixpkgs when <nixpkgs> resolves, else
# the offline set built from the host's Debian files (./offline).
#
# Either way the set provides `system` and `nix2aciPython`: the interpreter, with
# attrs and jsonschema, that runs nix2aci's builder inside the sandbox, and with
# python-gnupg postprocess.sh after it.
{ nixpkgs ? let found = builtins.tryEval <nixpkgs>; in if found.success then found.value else null
, system ? builtins.currentSystem
}:
if nixpkgs == null then import ./offline { inherit system; }
else
  let pkgs = import nixpkgs { inherit system; };
  in pkgs // {
    nix2aciPython = "${pkgs.python3.withPackages (ps: [ ps.attrs ps.jsonschema ps.python-gnupg ps.zstandard ps.pyyaml ])}/bin/python3";
    # Static mode needs a self-contained busybox.
    busyboxStatic = pkgs.pkgsStatic.busybox;
    # A second architecture, for multi-architecture images.
    busyboxArm64 = pkgs.pkgsCross.aarch64-multiplatform.pkgsStatic.busybox;
  }

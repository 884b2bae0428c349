# Bringing files of the host (Debian) into the store, for the offline package set.
#
# Every host file enters the store with `builtins.path`, at evaluation time, so a
# package built from it depends on the file's content, not on a host path that the
# sandbox would have to expose. A missing file is an evaluation error that names the
# Debian package to install.
let
  # dpkg's status database, indexed once by package name (see dpkg.nix).
  dpkg = import ./dpkg.nix { };
in
{
  # The store path of one host file: a directory that holds only that file.
  # `name` names the store path; `debianPackage` is named in the error.
  file = { path, name, debianPackage }:
    if !builtins.pathExists path then
      throw "nix2aci offline package set: ${path} is missing; install the Debian package '${debianPackage}' (./scripts/setup does)"
    else builtins.path {
      inherit name;
      path = dirOf path;
      filter = candidate: _type: candidate == path;
    };

  # The upstream version of an installed Debian package ("1:1.35.0-4+b1" -> "1.35.0"),
  # so store paths carry the version the host really has.
  debianVersion = debianPackage: (dpkg.require debianPackage).upstream;

  # A package's `debian` and `meta.homepage` attributes, for the SBOM (see dpkg.nix).
  inherit (dpkg) provenance;
}

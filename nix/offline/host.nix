# Bringing files of the host (Debian) into the store, for the offline package set.
#
# Every host file enters the store with `builtins.path`, at evaluation time, so a
# package built from it depends on the file's content, not on a host path that the
# sandbox would have to expose. A missing file is an evaluation error that names the
# Debian package to install.
let
  # dpkg's status database, split into one stanza per package.
  dpkgStanzas =
    let status = "/var/lib/dpkg/status";
    in if builtins.pathExists status
      then builtins.filter builtins.isString (builtins.split "\n\n" (builtins.readFile status))
      else [ ];
in
rec {
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
  debianVersion = debianPackage:
    let
      stanza = builtins.filter
        (s: builtins.match "(.*\n)?Package: ${debianPackage}\n.*" s != null)
        dpkgStanzas;
      full = builtins.match ".*\nVersion: ([^\n]*).*" (builtins.head stanza);
      upstream = builtins.match "([0-9]+:)?([^-]*)(-[^-]*)?" (builtins.head full);
    in
    if stanza == [ ] || full == null then
      throw "nix2aci offline package set: the Debian package '${debianPackage}' is not installed (./scripts/setup installs it)"
    else builtins.elemAt upstream 1;
}

# Debian packages of other architectures, for images of other platforms: their .deb
# files, which scripts/setup fetches into ./debs with `apt-get download` (from
# Debian's own signed index, checked by apt), enter the store at evaluation with
# builtins.path. Nothing of them is installed on the host.
{ dpkg ? import ./dpkg.nix { } }:
let
  inherit (builtins) attrNames filter head length match pathExists readDir replaceStrings;
  directory = ./debs;
  files = if pathExists directory then attrNames (readDir directory) else [ ];
in
{
  # The .deb of the Debian package `package` for the Debian architecture `arch`:
  # { deb (its store path); version (Debian's, "1:1.35.0-4+b1"); upstream ("1.35.0"); }.
  deb = { package, arch }:
    let
      found = filter (name: match "${package}_[^_]*_${arch}\\.deb" name != null) files;
      name = head found;
      # apt-get download writes the version's ":" as "%3a".
      version = replaceStrings [ "%3a" ] [ ":" ] (head (match "${package}_([^_]*)_${arch}\\.deb" name));
    in
    if found == [ ] then
      throw "nix2aci offline package set: the ${arch} package ${package} is missing from nix/offline/debs; run ./scripts/setup (it fetches it with apt-get download)"
    else if length found > 1 then
      throw "nix2aci offline package set: nix/offline/debs holds several ${arch} packages of ${package} (${builtins.concatStringsSep ", " found}); keep one"
    else {
      deb = builtins.path {
        path = directory + "/${name}";
        name = "debian-${package}-${replaceStrings [ "~" ":" ] [ "_" "_" ] version}-${arch}.deb";
      };
      inherit version;
      upstream = dpkg.upstreamVersion version;
    };
}

# What mkACI, buildContainer and buildOCIImage share in turning arguments into a build spec.
{ pkgs }:
rec {
  platforms = import ./platforms.nix;

  # What a package calls itself: nixpkgs' pname/version, else its derivation name.
  packageName = package:
    let parsed = builtins.parseDrvName (package.name or (baseNameOf (toString package)));
    in {
      name = package.pname or parsed.name;
      version = package.version or parsed.version;
    };

  # The Nix system a package is built for; the package set's when it does not say.
  systemOf = package: package.stdenv.hostPlatform.system or package.system or pkgs.system;

  # The store paths a list of strings refers to ("${bash}/bin/bash -c" -> bash's
  # path), each keeping the strings' context so that the build depends on them.
  storePathsIn = strings:
    let
      text = builtins.concatStringsSep " " strings;
      pieces = builtins.split "(${builtins.storeDir}/[0-9a-z]{32}-[^/ \"'$]+)" text;
      found = map builtins.head (builtins.filter builtins.isList pieces);
    in
    map (path: builtins.appendContext path (builtins.getContext text)) found;

  # The build spec fields every format has: the profile packages and the closure roots.
  paths = { packages, roots }: {
    packages = map (p: "${p}") packages;
    roots = map (p: "${p}") roots;
  };
}

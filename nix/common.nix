# What mkACI, buildContainer and buildOCIImage share in turning arguments into a build spec.
{ pkgs }:
rec {
  platforms = import ./platforms.nix;

  # What a package calls itself: nixpkgs' pname/version, else its derivation
  # name, else the name of its store path (a plain path, such as builtins.toFile's).
  packageName = package:
    let
      base = builtins.unsafeDiscardStringContext (baseNameOf (toString package));
      storeName = if builtins.match "[0-9a-z]{32}-.*" base != null then builtins.substring 33 (-1) base else base;
      parsed = builtins.parseDrvName (package.name or storeName);
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

  # The rootfs basics every function takes (see README "Rootfs basics"): each
  # switchable, on by default where harmless. `types` is the calling function's.
  rootfsArguments = types: with types; {
    users = optional bool true;
    hosts = optional bool true;
    tmp = optional bool true;
    shellLinks = optional bool true;
    resolvConf = optional bool false;
    cacert = optional (nullOr package) (pkgs.cacert or null);
    uid = optional id 1000;
    gid = optional id 1000;
    # A file's path names where it goes and nothing else: never outside the image (no ..),
    # never through another name for the same place (no ., //, trailing /).
    files = optional
      (attrsOf imagePath (record {
        text = optional (nullOr string) null;
        source = optional (nullOr package) null;
        symlink = optional (nullOr nonEmptyString) null;
        directory = optional bool false;
        mode = optional (nullOr fileMode) null;
        uid = optional id 0;
        gid = optional id 0;
      }))
      { };
  };

  # The build spec's `rootfs` part from checked arguments, and the store paths it adds
  # to the image (the CA bundle). A file must say exactly one of text, source,
  # symlink or directory, and lie outside the Nix store: the image's store paths are
  # the host's, unchanged (their names are hashes of their contents).
  # `account` holds the image's user and group as given (names, numbers or paths).
  rootfsSpec = fn: args: account:
    let
      kinds = file: builtins.length (builtins.filter (x: x) [
        (file.text != null) (file.source != null) (file.symlink != null) file.directory
      ]);
      bad = builtins.filter (path: kinds args.files.${path} != 1) (builtins.attrNames args.files);
      storePrefix = "${builtins.storeDir}/";
      inStore = builtins.filter
        (path: builtins.substring 0 (builtins.stringLength storePrefix) path == storePrefix)
        (builtins.attrNames args.files);
      bundle = if args.cacert == null then null else "${args.cacert}/etc/ssl/certs/ca-bundle.crt";
    in
    if bad != [ ] then
      throw "${fn}: files.${builtins.toJSON (builtins.head bad)} must set exactly one of text, source, symlink or directory = true"
    else if inStore != [ ] then
      throw "${fn}: files.${builtins.toJSON (builtins.head inStore)} must lie outside the Nix store (${builtins.storeDir}): the image's store paths are copied unchanged"
    else {
      spec = {
        inherit (args) users hosts tmp shellLinks resolvConf uid gid;
        inherit account;
        cacert = bundle;
        files = builtins.mapAttrs (_: file: file // {
          source = if file.source == null then null else "${file.source}";
        }) args.files;
      };
      roots = if args.cacert == null then [ ] else [ args.cacert ];
    };

  # os and arch: each function's default comes from the first package's system.
  platformArguments = types: with types; {
    os = optional (nullOr string) null;
    arch = optional (nullOr string) null;
  };

  # Argument names of rootfsArguments, to remove from what goes to the image itself.
  rootfsArgumentNames = builtins.attrNames (rootfsArguments (import ./types.nix "nix2aci"));
}

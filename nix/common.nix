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

  # The build spec fields every format has: the profile packages, the closure roots,
  # the packages that win a clash in the profile (`args`: checked arguments) and the
  # groups of store paths that make the image's layers (none: one layer of the whole
  # closure; Nix decides the groups, so that each can become a derivation of its own).
  paths = args: roots: {
    packages = map (p: "${p}") args.packages;
    roots = map (p: "${p}") roots;
    prefer = map (p: "${p}") args.prefer;
    layers = [ ];
  };

  # What Nix knows of the image's store paths, for its SBOM (nix2aci/build/spec/sbom.py):
  # { "<store path>" = { debian; licenses; homepage; }; } of the `roots` that are packages
  # and, transitively, of the `libraries` of the offline set's Debian imports: the Debian
  # packages a path was made from (its `debian` attribute), nixpkgs' meta.license and
  # meta.homepage. Paths of which nothing is known are left out.
  provenance = roots:
    let
      item = package: { key = builtins.unsafeDiscardStringContext "${package}"; inherit package; };
      packages = builtins.genericClosure {
        startSet = map item (builtins.filter builtins.isAttrs roots);
        operator = found: map item (found.package.libraries or [ ]);
      };
      # meta.license: a license record ({ spdxId; fullName; }), a list of them, or a string.
      licenses = license:
        if builtins.isList license then builtins.concatMap licenses license
        else if builtins.isAttrs license then
          [{ spdxId = license.spdxId or null; name = license.fullName or license.shortName or license.spdxId or "unnamed"; }]
        else [{ spdxId = null; name = toString license; }];
      homepage = given: if builtins.isList given then (if given == [ ] then null else builtins.head given) else given;
      known = found: {
        name = found.key;
        value = {
          debian = found.package.debian or [ ];
          licenses = if found.package.meta.license or null == null then [ ] else licenses found.package.meta.license;
          homepage = homepage (found.package.meta.homepage or null);
        };
      };
    in
    builtins.listToAttrs (builtins.filter
      (entry: entry.value.debian != [ ] || entry.value.licenses != [ ] || entry.value.homepage != null)
      (map known packages));

  # The rootfs basics every function takes (see README "Rootfs basics"): each
  # switchable, on by default where harmless. `types` is the calling function's.
  rootfsArguments = types: with types; {
    users = optional bool true
      "/etc/passwd and /etc/group with root, nobody, and the image's user and group when they are names (ids uid, gid)";
    hosts = optional bool true "/etc/hosts: localhost for IPv4 and IPv6";
    tmp = optional bool true "/tmp, mode 1777";
    shellLinks = optional bool true "/bin/sh (to bash, dash, ash or busybox) and /usr/bin/env when the image has a shell and env";
    resolvConf = optional bool false "an empty /etc/resolv.conf with the host's mounted read-only on it";
    cacert = optional (nullOr package) (pkgs.cacert or null)
      "the CA bundle at the usual paths, and SSL_CERT_FILE, NIX_SSL_CERT_FILE; null for none";
    uid = optional id 1000 "the id of a named user";
    gid = optional id 1000 "the id of a named group";
    # A file's path names where it goes and nothing else: never outside the image (no ..),
    # never through another name for the same place (no ., //, trailing /).
    files = optional
      (attrsOf imagePath (record {
        text = optional (nullOr string) null "the file's content";
        source = optional (nullOr package) null "a file to copy (a path or a package)";
        symlink = optional (nullOr nonEmptyString) null "a symlink's target";
        directory = optional bool false "true: a directory";
        mode = optional (nullOr fileMode) null "the mode, an octal string such as \"0640\"";
        uid = optional id 0 "the owner's id";
        gid = optional id 0 "the group's id";
      }))
      { }
      "your files as data, by absolute path: each exactly one of text, source, symlink, directory = true";
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

  # What every function takes besides the rootfs basics: the platform, in the format's
  # names (`names`: "appc's" or "Go's"), and the packages that win a clash in the profile.
  arguments = types: names: with types; rootfsArguments types // {
    os = optional (nullOr string) null "the image's os (${names} names); default: the first package's system's";
    arch = optional (nullOr string) null "the image's arch (${names} names); default: the first package's system's";
    prefer = optional (listOf package) [ ]
      "packages that win when several provide the same file of the profile (the first listed wins)";
  };

  # The image's { os; arch; variant; } in `format`'s names ("appc" or "oci"): os and
  # arch as given, else those of `system` (the first package's Nix system), checked
  # against the format's table. The default variant (OCI's arm v6, v7) belongs to the
  # default arch only. The system is read only for what is not given.
  platform = types: format: system: args:
    let
      default = {
        appc = platforms.appc system;
        oci = let oci = platforms.oci system; in oci // { arch = oci.architecture; };
      }.${format};
      check = { appc = types.appcOsArch; oci = types.ociOsArch; }.${format};
    in
    check {
      os = if args.os != null then args.os else default.os;
      arch = if args.arch != null then args.arch else default.arch;
    } // { variant = if args.arch == null then default.variant or null else null; };

  # An image's version (an ACI's version label, an OCI image's tag): `given`, else the
  # package's own version, else "latest".
  version = given: package:
    let own = (packageName package).version;
    in if given != null then given else if own != "" then own else "latest";

  # The checked arguments the format's own part of the spec (`image`) takes: all but the
  # packages, prefer, the rootfs basics and the function's `others`; os and arch as checked.
  image = args: others: platform:
    removeAttrs args ([ "packages" "prefer" ] ++ rootfsArgumentNames ++ others) // { inherit (platform) os arch; };

  # Argument names of rootfsArguments, to remove from what goes to the image itself.
  rootfsArgumentNames = builtins.attrNames (rootfsArguments (import ./types.nix "nix2aci"));
}

# mkACI: an appc App Container Image (.aci) of a runtime closure.
#
# This file turns the user's arguments into the build spec; it checks only what
# must fail at evaluation time (types, names, os/arch). The manifest is made and
# validated by the Python builder (nix2aci/aci/build.py).
{ pkgs, runBuilder, common }:
let
  types = import ./types.nix "mkACI";
  inherit (types) required optional;

  stringAttrs = types.attrsOf types.string types.string;
  # Names in the manifest's files and lines: checked where they are given.
  environment = types.attrsOf types.environmentName types.string;

  arguments = types.record (common.rootfsArguments types // common.platformArguments types // {
    packages = required (types.nonEmpty (types.listOf types.package));
    name = optional (types.nullOr types.acIdentifier) null;
    version = optional (types.nullOr types.fileNamePart) null;
    exec = optional (types.nullOr types.argv) null;
    static = optional types.bool false;
    thin = optional types.bool false;
    prefer = optional (types.listOf types.package) [ ];
    env = optional environment { };
    user = optional types.userOrGroup "0";
    group = optional types.userOrGroup "0";
    supplementaryGIDs = optional (types.listOf types.id) [ ];
    workingDirectory = optional (types.nullOr types.absolutePath) null;
    labels = optional stringAttrs { };
    annotations = optional stringAttrs { };
    userLabels = optional stringAttrs { };
    userAnnotations = optional stringAttrs { };
    mounts = optional
      (types.attrsOf types.acName (types.record {
        path = required types.imagePath;
        readOnly = optional types.bool false;
      }))
      { };
    ports = optional
      (types.attrsOf types.acName (types.record {
        port = required (types.intBetween 1 65535);
        protocol = optional types.string "tcp";
        count = optional (types.intBetween 1 65535) 1;
        socketActivated = optional types.bool false;
      }))
      { };
    isolators = optional (types.listOf (types.record {
      name = required types.acIdentifier;
      value = required types.anything;
    })) [ ];
    eventHandlers = optional
      (types.record { pre-start = optional (types.nullOr types.argv) null; post-stop = optional (types.nullOr types.argv) null; })
      { };
    dependencies = optional (types.listOf (types.record {
      imageName = required types.acIdentifier;
      imageID = optional (types.nullOr types.string) null;
      labels = optional stringAttrs { };
      size = optional (types.nullOr (types.intBetween 0 9007199254740991)) null;
    })) [ ];
    pathWhitelist = optional (types.listOf types.absolutePath) [ ];
    sign = optional types.bool true;
    compression = optional (types.enum [ "gzip" "xz" "bzip2" "none" ]) "gzip";
    compressionLevel = optional (types.nullOr (types.intBetween 0 9)) null;
  });

in
userArguments:
let
  args = arguments.verify "" userArguments;
  first = builtins.head args.packages;
  firstName = common.packageName first;

  name =
    if args.name != null then args.name
    else if (builtins.tryEval (types.acIdentifier.verify "name" firstName.name)).success then firstName.name
    else throw "mkACI: the image name defaults to the first package's name \"${firstName.name}\", which is not ${types.acIdentifier.description}; pass name, e.g. name = \"example.com/${builtins.replaceStrings ["_"] ["-"] firstName.name}\"";

  # The version is part of the file name: a package's own version is checked like an argument.
  version = types.fileNamePart.verify "version (the first package's version, when version is not given)"
    (if args.version != null then args.version
     else if firstName.version != "" then firstName.version
     else "latest");

  platform =
    let default = common.platforms.appc (common.systemOf first);
    in types.appcOsArch {
      os = if args.os != null then args.os else default.os;
      arch = if args.arch != null then args.arch else default.arch;
    };

  mode =
    if args.thin && args.static then throw "mkACI: thin and static exclude each other: a static image carries its one path, a thin one mounts its closure from the host"
    else if args.thin then "thin"
    else if args.static then
      (if builtins.length args.packages == 1 then "static"
       else throw "mkACI: static = true packs exactly one self-contained package, got ${toString (builtins.length args.packages)} packages")
    else "fat";

  # A static image is its one package: no CA bundle from elsewhere.
  rootfs = common.rootfsSpec "mkACI"
    (if args.static && !(userArguments ? cacert) then args // { cacert = null; } else args)
    { inherit (args) user group; };

  image = removeAttrs args ([ "packages" "prefer" "static" "thin" "sign" "compression" "compressionLevel" ] ++ common.rootfsArgumentNames) // {
    inherit name version;
    inherit (platform) os arch;
  };
in
runBuilder {
  # An AC Identifier may hold ~, which a derivation name may not.
  name = "aci-${builtins.replaceStrings [ "~" ] [ "-" ] (baseNameOf name)}-${version}";
  roots = args.packages ++ rootfs.roots;
  spec = common.paths { inherit (args) packages; roots = args.packages ++ rootfs.roots; } // {
    format = "aci";
    rootfs = rootfs.spec;
    inherit mode image;
    inherit (args) sign compression compressionLevel;
    prefer = map (p: "${p}") args.prefer;
  };
}

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

  # The arguments and what each does; `common.arguments` adds the rootfs basics, os, arch and prefer.
  arguments = types.record (common.arguments types "appc's" // {
    packages = required (types.nonEmpty (types.listOf types.package))
      "non-empty list of packages; their runtime closure goes into the image";
    name = optional (types.nullOr types.acIdentifier) null
      "the image's AC Identifier (example.com/app); default: the first package's pname";
    version = optional (types.nullOr types.fileNamePart) null
      "the version label, part of the file name; default: the first package's version, else \"latest\"";
    exec = optional (types.nullOr types.argv) null "the command, a list of strings (never split); null: no exec";
    static = optional types.bool false
      "pack the one package's tree as the whole root; it must reference no other store path";
    thin = optional types.bool false
      "carry only the skeleton; each closure path becomes a read-only mountPoint, listed in NAME-VERSION-OS-ARCH.mounts";
    env = optional environment { } "the environment, { NAME = \"value\"; }";
    user = optional types.userOrGroup "0" "the app's user: a name, numeric id or absolute path";
    group = optional types.userOrGroup "0" "the app's group: a name, numeric id or absolute path";
    supplementaryGIDs = optional (types.listOf types.id) [ ] "more group ids of the app";
    workingDirectory = optional (types.nullOr types.workingDirectory) null "the app's working directory; null: /";
    labels = optional stringAttrs { } "more labels; version, os and arch come from their own arguments";
    annotations = optional stringAttrs { } "the image's annotations, { authors = \"...\"; }";
    userLabels = optional stringAttrs { } "the app's free-form labels";
    userAnnotations = optional stringAttrs { } "the app's free-form annotations";
    mounts = optional
      (types.attrsOf types.acName (types.record {
        path = required types.imagePath "where it is mounted in the image";
        readOnly = optional types.bool false "whether the mount is read-only";
      }))
      { }
      "the app's mount points, by name";
    ports = optional
      (types.attrsOf types.acName (types.record {
        port = required (types.intBetween 1 65535) "the port number";
        protocol = optional types.string "tcp" "the protocol";
        count = optional (types.intBetween 1 65535) 1 "how many ports, from port on";
        socketActivated = optional types.bool false "whether the app is socket-activated on it";
      }))
      { }
      "the app's ports, by name";
    isolators = optional (types.listOf (types.record {
      name = required types.acIdentifier "the isolator's name (resource/memory)";
      value = required types.anything "its value, a Nix value";
    })) [ ] "the app's isolators";
    eventHandlers = optional
      (types.record {
        pre-start = optional (types.nullOr types.argv) null "run before the app starts";
        post-stop = optional (types.nullOr types.argv) null "run after the app stops";
      })
      { }
      "commands run before the app starts and after it stops";
    dependencies = optional (types.listOf (types.record {
      imageName = required types.acIdentifier "the image's name";
      imageID = optional (types.nullOr types.string) null "the image's ID";
      labels = optional stringAttrs { } "the image's labels";
      size = optional (types.nullOr (types.intBetween 0 9007199254740991)) null "the image's size in bytes";
    })) [ ] "images this one depends on";
    pathWhitelist = optional (types.listOf types.absolutePath) [ ] "the only paths of the image the app may see";
    sign = optional types.bool true "whether postprocess.sh signs the image (false: it only links)";
    # The ACI format's compressions, as the builder allows them (nix2aci/aci/members.py reads the same file).
    compression = optional (types.enum (builtins.fromJSON (builtins.readFile ../nix2aci/aci/compressions.json))) "gzip"
      "the image's compression";
    compressionLevel = optional (types.nullOr (types.intBetween 0 9)) null "the compression level; null: the tool's";
  });

in
{
  inherit arguments;

  build = userArguments:
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
      (common.version args.version first);

    platform = common.platform types "appc" (common.systemOf first) args;

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

    image = common.image args [ "static" "thin" "sign" "compression" "compressionLevel" ] platform // { inherit name version; };
    roots = args.packages ++ rootfs.roots;
  in
  runBuilder {
    # An AC Identifier may hold ~, which a derivation name may not.
    name = "aci-${builtins.replaceStrings [ "~" ] [ "-" ] (baseNameOf name)}-${version}";
    inherit roots;
    spec = common.paths args roots // {
      format = "aci";
      rootfs = rootfs.spec;
      inherit mode image;
      inherit (args) sign compression compressionLevel;
      provenance = common.provenance roots;
    };
  };
}

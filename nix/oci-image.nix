# buildOCIImage: an OCI image, layered, as an image layout directory (oci-layout,
# index.json, blobs/) or a docker-archive that `docker load` and `podman load` take.
#
# Each layer is a derivation of its own, so a rebuild packs only the layers whose
# store paths changed and two images holding the same store path share its layer:
#   1. `layering` (built while Nix evaluates this file: import from derivation)
#      reads the closure and groups its store paths, at most maxLayers layers in
#      all (nix2aci/oci/layering.py says how);
#   2. one `storeLayer` per group: its spec names only the group and the
#      compression, so every image with that group has the same derivation;
#   3. `rootfsLayer`: the profile, the rootfs basics and `files`;
#   4. the image: config, manifest and index over the layers' outputs, which are
#      its only inputs: the image references its layers, not the store paths;
#      and postprocess.sh (runBuilder), which no layer knows of: `sign` changes
#      the image derivation, never a layer's.
# maxLayers = 1 without fromImage needs no step 1: one layer holds everything.
# Only types are checked here; the documents are made and validated by nix2aci/oci/.
{ pkgs, runStep, runBuilder, common }:
let
  types = import ./types.nix "buildOCIImage";
  inherit (types) required optional;
  # The OCI layers' compressions, as the builder allows them (nix2aci/oci/layout.py reads the same file).
  layerCompressions = builtins.fromJSON (builtins.readFile ../nix2aci/oci/layer-compressions.json);
  formats = [ "oci-layout" "docker-archive" ];

  # The arguments and what each does; `common.arguments` adds the rootfs basics, os, arch and prefer.
  arguments = types.record (common.arguments types "Go's" // {
    packages = required (types.nonEmpty (types.listOf types.package))
      "non-empty list of packages; their closure makes the image's store, their merged profile its root";
    name = optional (types.nullOr types.imageName) null
      "the image's repository name (docker-archive's tag is NAME:TAG); default: the first package's pname";
    tag = optional (types.nullOr types.ociTag) null "the image's tag; default: the first package's version, else \"latest\"";
    entrypoint = optional (types.nullOr types.argv) null "the config's Entrypoint, a list of strings (never split)";
    cmd = optional (types.nullOr types.argv) null "the config's Cmd, a list of strings (never split)";
    env = optional (types.attrsOf types.environmentName types.string) { } "the environment, { NAME = \"value\"; }";
    workingDir = optional (types.nullOr types.workingDirectory) null "the config's WorkingDir";
    user = optional (types.nullOr types.ociUser) null "the config's User: USER or USER:GROUP";
    exposedPorts = optional (types.listOf (types.mkPattern "a port like \"80/tcp\", \"53/udp\" or \"8080\"" "[0-9]+(/(tcp|udp))?")) [ ]
      "the config's ExposedPorts: [ \"80/tcp\" ]";
    labels = optional (types.attrsOf types.string types.string) { } "the config's Labels";
    created = optional types.timestamp "1970-01-01T00:00:01Z"
      "the config's and the history's creation time, RFC 3339 in UTC (never the build's time)";
    maxLayers = optional types.positive 100
      "the most layers the image has, fromImage's included; 1: one layer of everything";
    format = optional (types.enum formats) "oci-layout"
      "\"oci-layout\": an image layout directory; \"docker-archive\": $out/NAME-TAG.tar for docker load and podman load";
    layerCompression = optional (types.enum layerCompressions) "gzip" "how the layers are compressed";
    fromImage = optional (types.nullOr types.package) null
      "an OCI image layout in the store whose layers come first and whose config this image inherits";
    sign = optional types.bool true
      "whether postprocess.sh --push signs the pushed image with your nix2aci key (false: pushes it unsigned)";
  });

  # A store path's name without its hash.
  storeName = path: builtins.unsafeDiscardStringContext (builtins.substring 33 (-1) (baseNameOf path));

  # `path`, a store path read from a build's output, as a string that depends on it.
  withContext = path: builtins.appendContext path { ${path} = { path = true; }; };

  # The layer of a group of store paths. Only the group and the compression make the
  # derivation: the same group is the same layer (the same store path) in every image.
  storeLayer = compression: paths: runStep {
    name = "oci-layer-${if builtins.length paths == 1 then storeName (builtins.head paths) else "${toString (builtins.length paths)}-paths"}";
    spec = { format = "oci-store-layer"; inherit paths compression; };
  };
in
{
  inherit arguments;

  build = userArguments:
  let
    args = arguments.verify "" userArguments;
    first = builtins.head args.packages;
    name = if args.name != null then args.name else (common.packageName first).name;
    tag = common.version args.tag first;
    platform = common.platform types "oci" (common.systemOf first) args;
    rootfs = common.rootfsSpec "buildOCIImage" args (
      let parts = builtins.match "([^:]*)(:(.*))?" (if args.user == null then "0" else args.user);
      in { user = builtins.elemAt parts 0; group = if builtins.elemAt parts 2 == null then "0" else builtins.elemAt parts 2; });
    named = common.storePathsIn ((if args.entrypoint == null then [ ] else args.entrypoint) ++ (if args.cmd == null then [ ] else args.cmd));
    roots = args.packages ++ rootfs.roots ++ named;
    fromImage = if args.fromImage == null then null else "${args.fromImage}";
    label = "${baseNameOf name}-${tag}";

    # Step 1: the groups of store paths that get a layer each.
    layering =
      if args.maxLayers == 1 && fromImage == null then { groups = [ ]; storeInRootfs = true; }
      else
        let
          step = runStep {
            name = "oci-layering-${label}";
            inherit roots;
            spec = {
              format = "oci-layering";
              roots = map (p: "${p}") roots;
              first = map (p: "${p}") (args.packages ++ named);
              inherit (args) maxLayers;
              baseImage = fromImage;
            };
          };
          read = builtins.fromJSON (builtins.unsafeDiscardStringContext (builtins.readFile "${step}/layering.json"));
        in read // { groups = map (map withContext) read.groups; };

    # Steps 2 and 3.
    storeLayers = map (group: { layer = storeLayer args.layerCompression group; paths = group; }) layering.groups;
    rootfsLayer = runStep {
      name = "oci-layer-rootfs-${label}";
      inherit roots;
      spec = common.paths args roots // {
        format = "oci-rootfs-layer";
        mode = "fat";
        rootfs = rootfs.spec;
        compression = args.layerCompression;
        includeStore = layering.storeInRootfs;
      };
    };
    describe = paths: "store paths: ${builtins.concatStringsSep " " (map builtins.unsafeDiscardStringContext paths)}";
    layers = map (layer: { layer = "${layer.layer}"; comment = describe layer.paths; }) storeLayers ++ [{
      layer = "${rootfsLayer}";
      comment = if layering.storeInRootfs then "the closure of the packages, their profile, the rootfs basics and files"
        else "the packages' profile, the rootfs basics and files";
    }];
  in
  if args.format == "docker-archive" && args.layerCompression == "zstd" then
    throw "buildOCIImage: layerCompression = \"zstd\" cannot go with format = \"docker-archive\": docker load (Docker 20.10) reads gzip and uncompressed layers only; use \"gzip\" or format = \"oci-layout\""
  else runBuilder {
    name = "oci-image-${label}";
    roots = [ ];
    spec = {
      inherit (args) format;
      # Text only: the store paths the command names are the layers' inputs, not the image's.
      image = builtins.fromJSON (builtins.unsafeDiscardStringContext (builtins.toJSON (
        common.image args [ "name" "tag" "maxLayers" "format" "layerCompression" "fromImage" "sign" ] platform // {
          inherit name tag;
          inherit (platform) variant;
        })));
      inherit layers;
      inherit (args) sign;
      baseImage = fromImage;
    };
  }
  // {
    # The groups of store paths, the layer derivations bottom first (the base image's aside), the last one.
    inherit layering rootfsLayer;
    # What an index over images needs at evaluation (nix/oci-index.nix), in Go's platform names.
    ociImage = { inherit name tag; inherit (args) format; platform = { inherit (platform) os arch variant; }; };
    layers = map (layer: layer.layer) storeLayers ++ [ rootfsLayer ];
  };
}

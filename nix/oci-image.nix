# buildOCIImage: an OCI image layout directory (oci-layout, index.json, blobs/)
# that skopeo, umoci, podman and docker take: `skopeo copy oci:./result:TAG ...`.
#
# One deterministic layer holds the closure of `packages` (and of the store paths
# `entrypoint` and `cmd` name) and their merged profile at /. Only types are
# checked here; the documents are made and validated by nix2aci/oci/layout.py.
{ pkgs, runBuilder, common }:
let
  types = import ./types.nix "buildOCIImage";
  inherit (types) required optional;

  # The arguments and what each does; `common.arguments` adds the rootfs basics, os, arch and prefer.
  arguments = types.record (common.arguments types "Go's" // {
    packages = required (types.nonEmpty (types.listOf types.package))
      "non-empty list of packages; their closure and merged profile make the layer";
    name = optional (types.nullOr types.derivationName) null "the image's name; default: the first package's pname";
    tag = optional (types.nullOr types.string) null "the image's tag; default: the first package's version, else \"latest\"";
    entrypoint = optional (types.nullOr types.argv) null "the config's Entrypoint, a list of strings (never split)";
    cmd = optional (types.nullOr types.argv) null "the config's Cmd, a list of strings (never split)";
    env = optional (types.attrsOf types.environmentName types.string) { } "the environment, { NAME = \"value\"; }";
    workingDir = optional (types.nullOr types.workingDirectory) null "the config's WorkingDir";
    user = optional (types.nullOr types.ociUser) null "the config's User: USER or USER:GROUP";
    exposedPorts = optional (types.listOf (types.mkPattern "a port like \"80/tcp\", \"53/udp\" or \"8080\"" "[0-9]+(/(tcp|udp))?")) [ ]
      "the config's ExposedPorts: [ \"80/tcp\" ]";
    labels = optional (types.attrsOf types.string types.string) { } "the config's Labels";
    # The OCI layers' compressions, as the builder allows them (nix2aci/oci/layout.py reads the same file).
    compression = optional (types.enum (builtins.fromJSON (builtins.readFile ../nix2aci/oci/layer-compressions.json)))
      "gzip" "the layer's compression";
  });
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
    roots = args.packages ++ rootfs.roots ++ common.storePathsIn ((if args.entrypoint == null then [ ] else args.entrypoint) ++ (if args.cmd == null then [ ] else args.cmd));
  in
  if builtins.match "[A-Za-z0-9_][A-Za-z0-9._-]{0,127}" tag == null then
    throw "buildOCIImage: tag must be an OCI tag (letters, digits, _ . -, at most 128 characters, not starting with . or -), got \"${tag}\""
  else runBuilder {
    name = "oci-image-${baseNameOf name}-${tag}";
    inherit roots;
    spec = common.paths args roots // {
      format = "oci-layout";
      mode = "fat";
      inherit (args) compression;
      rootfs = rootfs.spec;
      image = common.image args [ "name" "tag" "compression" ] platform // { inherit tag; inherit (platform) variant; };
    };
  };
}

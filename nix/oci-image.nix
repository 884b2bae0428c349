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

  arguments = types.record (common.rootfsArguments types // common.platformArguments types // {
    packages = required (types.nonEmpty (types.listOf types.package));
    prefer = optional (types.listOf types.package) [ ];
    name = optional (types.nullOr types.derivationName) null;
    tag = optional (types.nullOr types.string) null;
    entrypoint = optional (types.nullOr types.argv) null;
    cmd = optional (types.nullOr types.argv) null;
    env = optional (types.attrsOf types.environmentName types.string) { };
    workingDir = optional (types.nullOr types.absolutePath) null;
    user = optional (types.nullOr types.ociUser) null;
    exposedPorts = optional (types.listOf (types.mkPattern "a port like \"80/tcp\", \"53/udp\" or \"8080\"" "[0-9]+(/(tcp|udp))?")) [ ];
    labels = optional (types.attrsOf types.string types.string) { };
    compression = optional (types.enum [ "gzip" "none" ]) "gzip";
  });
in
userArguments:
let
  args = arguments.verify "" userArguments;
  first = builtins.head args.packages;
  firstName = common.packageName first;
  name = if args.name != null then args.name else firstName.name;
  tag = if args.tag != null then args.tag else if firstName.version != "" then firstName.version else "latest";
  default = common.platforms.oci (common.systemOf first);
  platform = types.ociOsArch {
    os = if args.os != null then args.os else default.os;
    arch = if args.arch != null then args.arch else default.architecture;
  };
  # The default variant belongs to the default architecture only.
  variant = if args.arch == null then default.variant or null else null;
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
  spec = common.paths { inherit (args) packages; inherit roots; } // {
    format = "oci-layout";
    mode = "fat";
    prefer = map (p: "${p}") args.prefer;
    inherit (args) compression;
    rootfs = rootfs.spec;
    image = removeAttrs args ([ "packages" "prefer" "name" "tag" "compression" ] ++ common.rootfsArgumentNames) // {
      inherit tag variant;
      inherit (platform) os arch;
    };
  };
}

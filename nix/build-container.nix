# buildContainer: an OCI runtime bundle (config.json + rootfs/) that runc runs.
#
# The arguments of nixpkgs' ociTools.buildContainer (args, mounts, os, arch,
# readonly), all honoured, plus env, user, cwd, terminal, hostname, capabilities,
# packages (a merged profile at /) and thin. The closure is that of the store paths
# `args` names and of `packages`. Only types are checked here; the config is made
# and validated by the Python builder (nix2aci/oci/bundle.py).
{ pkgs, runBuilder, common }:
let
  types = import ./types.nix "buildContainer";
  inherit (types) required optional;

  arguments = types.record (common.rootfsArguments types // common.platformArguments types // {
    args = required (types.nonEmpty types.argv);
    packages = optional (types.listOf types.package) [ ];
    prefer = optional (types.listOf types.package) [ ];
    name = optional (types.nullOr types.derivationName) null;
    mounts = optional
      (types.attrsOf types.imagePath (types.record {
        type = optional types.string "none";
        source = optional types.string "none";
        options = optional (types.listOf types.string) [ ];
      }))
      { };
    readonly = optional types.bool true;
    env = optional (types.attrsOf types.environmentName types.string) { };
    user = optional (types.record {
      uid = optional types.id 0;
      gid = optional types.id 0;
      additionalGids = optional (types.listOf types.id) [ ];
    }) { };
    cwd = optional types.absolutePath "/";
    terminal = optional types.bool false;
    hostname = optional (types.nullOr types.string) null;
    capabilities = optional (types.nullOr (types.listOf types.string)) null;
    thin = optional types.bool false;
  });
in
userArguments:
let
  args = arguments.verify "" userArguments;
  rootfs = common.rootfsSpec "buildContainer" args { user = toString args.user.uid; group = toString args.user.gid; };
  roots = args.packages ++ common.storePathsIn args.args ++ rootfs.roots;
  # The program's file name, without the context of the store path it lives in.
  program = builtins.unsafeDiscardStringContext (baseNameOf (builtins.head args.args));
  platform =
    let default = common.platforms.oci (if args.packages != [ ] then common.systemOf (builtins.head args.packages) else pkgs.system);
    in types.ociOsArch {
      os = if args.os != null then args.os else default.os;
      arch = if args.arch != null then args.arch else default.architecture;
    };
in
if roots == [ ] then throw "buildContainer: args name no store path and packages is empty: there is nothing to put in the container"
else runBuilder {
  name = "oci-bundle-${if args.name != null then baseNameOf args.name
    else if args.packages != [ ] then (common.packageName (builtins.head args.packages)).name
    else program}";
  inherit roots;
  spec = common.paths { inherit (args) packages; inherit roots; } // {
    format = "oci-bundle";
    mode = if args.thin then "thin" else "fat";
    prefer = map (p: "${p}") args.prefer;
    rootfs = rootfs.spec;
    image = removeAttrs args ([ "packages" "prefer" "name" "thin" ] ++ common.rootfsArgumentNames) // { inherit (platform) os arch; };
  };
}

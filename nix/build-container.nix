# buildContainer: an OCI runtime bundle (config.json + rootfs/) that runc runs.
#
# The arguments of nixpkgs' ociTools.buildContainer (args, mounts, os, arch,
# readonly), all honoured, plus env, user, cwd, terminal, hostname, capabilities,
# packages (a merged profile at /) and thin. The closure is that of the store paths
# `args` names and of `packages`. Only types are checked here; the config is made
# and validated by the Python builder (nix2aci/oci/bundle.py).
{ pkgs, runStep, common }:
let
  types = import ./types.nix "buildContainer";
  inherit (types) required optional;

  # The arguments and what each does; `common.arguments` adds the rootfs basics, os, arch and prefer.
  arguments = types.record (common.arguments types "Go's" // {
    args = required (types.nonEmpty types.argv) "the command, a list of strings (never split); its store paths go into the closure";
    packages = optional (types.listOf types.package) [ ] "packages whose closure goes into the container, merged into a profile at /";
    name = optional (types.nullOr types.derivationName) null
      "the output's name (oci-bundle-NAME); default: the first package's name, else the program's";
    mounts = optional
      (types.attrsOf types.imagePath (types.record {
        type = optional types.string "none" "the mount's type (bind, tmpfs, ...)";
        source = optional types.string "none" "what is mounted";
        options = optional (types.listOf types.string) [ ] "the mount's options (rbind, ro, ...)";
      }))
      { }
      "more mounts, by destination";
    readonly = optional types.bool true "whether the root is read-only (a writable root would be written into the store)";
    env = optional (types.attrsOf types.environmentName types.string) { } "the environment, { NAME = \"value\"; }";
    user = optional (types.record {
      uid = optional types.id 0 "the process's user id";
      gid = optional types.id 0 "the process's group id";
      additionalGids = optional (types.listOf types.id) [ ] "more group ids";
    }) { } "the process's user: { uid; gid; additionalGids; }";
    cwd = optional types.workingDirectory "/" "the working directory";
    terminal = optional types.bool false "whether the process gets a terminal";
    hostname = optional (types.nullOr types.hostname) null "the container's hostname";
    capabilities = optional (types.nullOr (types.listOf types.string)) null
      "the process's capabilities; null: rkt's and Docker's set";
    thin = optional types.bool false "bind-mount each closure path read-only from the host instead of copying it";
  });
in
{
  inherit arguments;

  build = userArguments:
  let
    args = arguments.verify "" userArguments;
    rootfs = common.rootfsSpec "buildContainer" args { user = toString args.user.uid; group = toString args.user.gid; };
    roots = args.packages ++ common.storePathsIn args.args ++ rootfs.roots;
    # The program's file name, without the context of the store path it lives in.
    program = builtins.unsafeDiscardStringContext (baseNameOf (builtins.head args.args));
    platform = common.platform types "oci"
      (if args.packages != [ ] then common.systemOf (builtins.head args.packages) else pkgs.system) args;
  in
  if roots == [ ] then throw "buildContainer: args name no store path and packages is empty: there is nothing to put in the container"
  else runStep {
    name = "oci-bundle-${if args.name != null then baseNameOf args.name
      else if args.packages != [ ] then (common.packageName (builtins.head args.packages)).name
      else program}";
    inherit roots;
    spec = common.paths args roots // {
      format = "oci-bundle";
      mode = if args.thin then "thin" else "fat";
      rootfs = rootfs.spec;
      image = common.image args [ "name" "thin" ] platform;
      provenance = common.provenance roots;
    };
    # Bundles are quick to rebuild and as large as their closure: never fetch them.
    attributes.allowSubstitutes = false;
  };
}

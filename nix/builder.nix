# The one derivation shape every nix2aci output uses: Python's builder reads the
# build spec and the closure from .attrs.json (structured attributes) and writes $out.
{ pkgs }:
let
  root = toString ../.;
  # Only the Python package enters the store, so editing the README or a test
  # does not rebuild every image.
  source = builtins.path {
    name = "nix2aci-source";
    path = ../.;
    filter = path: _type:
      let relative = builtins.substring (builtins.stringLength root) (-1) path;
      in (relative == "/nix2aci" || builtins.substring 0 9 relative == "/nix2aci/")
        && builtins.baseNameOf path != "__pycache__"
        && builtins.match ".*\\.pyc" path == null;
  };
in
{
  # name: the derivation name; spec: the build spec (JSON-able attribute set);
  # roots: the store paths whose runtime closure the builder may copy.
  runBuilder = { name, spec, roots }: derivation {
    inherit name;
    system = pkgs.system;
    builder = pkgs.nix2aciPython;
    # -I: isolated mode, so nothing from the build environment changes Python's behaviour.
    args = [ "-I" "-B" "-c" "import sys; sys.path.insert(0, sys.argv[1]); from nix2aci.build import main; sys.exit(main())" source ];
    __structuredAttrs = true;
    # The builder also writes postprocess.sh, which runs the same interpreter and
    # source outside the build.
    nix2aci = spec // { python = pkgs.nix2aciPython; inherit source; };
    exportReferencesGraph.closure = roots;
    # Images are quick to rebuild and as large as their closure: never fetch them.
    preferLocalBuild = true;
    allowSubstitutes = false;
  };
}

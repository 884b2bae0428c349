# The one derivation shape every nix2aci output uses: Python's builder reads the
# build spec (one JSON file) and the closure graphs Nix exports, and writes $out.
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
  runBuilder = { name, spec, roots }:
  let
    # The builder also writes postprocess.sh, which runs the same interpreter and
    # source outside the build.
    buildSpec = spec // { python = pkgs.nix2aciPython; inherit source; };
  in
  derivation {
    inherit name;
    system = pkgs.system;
    builder = pkgs.nix2aciPython;
    # -I: isolated mode, so nothing from the build environment changes Python's behaviour.
    args = [ "-I" "-B" "-c" "import sys; sys.path.insert(0, sys.argv[1]); from nix2aci.build.main import main; sys.exit(main())" source ];
    # The build spec: one JSON file in the build directory, named by $nix2aciSpecPath.
    nix2aciSpec = builtins.toJSON buildSpec;
    passAsFile = [ "nix2aciSpec" ];
    # Root i's closure with every path's references, in the file closure-i.
    # Not structured attributes: with them Nix 2.8 adds each exported path's
    # closure size, computing a closure per path (seconds at 1,000 paths).
    exportReferencesGraph = builtins.concatLists (builtins.genList
      (index: [ "closure-${toString index}" "${builtins.elemAt roots index}" ])
      (builtins.length roots));
    # Images are quick to rebuild and as large as their closure: never fetch them.
    preferLocalBuild = true;
    allowSubstitutes = false;
  }
  # The same spec as a Nix value, to inspect: nix-instantiate --eval -A busybox.nix2aci.image
  // { nix2aci = buildSpec; };
}

# The one derivation shape every nix2aci output uses: Python's builder reads the
# build spec (one JSON file) and the closure graphs Nix exports, and writes $out.
# Also nix2aci's command line as a package (`command`), which postprocess.sh runs.
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

  # Runs `program` (Python source) with the package set's interpreter, isolated
  # (-I: nothing from the environment changes Python's behaviour), the nix2aci
  # source first on sys.path; the words after it are sys.argv[2:].
  python = program: [ pkgs.nix2aciPython "-I" "-B" "-c" "import sys; sys.path.insert(0, sys.argv[1]); ${program}" source ];

  version = (builtins.fromTOML (builtins.readFile ../pyproject.toml)).project.version;

  # bin/nix2aci: the command line with the package set's interpreter (and, with
  # nixpkgs, its attrs, jsonschema and python-gnupg) and the source above.
  command = derivation {
    name = "nix2aci-${version}";
    inherit version;
    pname = "nix2aci";
    system = pkgs.system;
    builder = pkgs.nix2aciPython;
    args = [ "-I" "-c" ''
      import os
      os.makedirs(os.environ["out"] + "/bin")
      path = os.environ["out"] + "/bin/nix2aci"
      with open(path, "w", encoding="utf-8") as file:
          file.write(os.environ["script"])
      os.chmod(path, 0o555)
    '' ];
    script = ''
      #!/bin/sh
      exec ${builtins.concatStringsSep " " (map (word: "'${word}'")
        (python "from nix2aci.commands import main; sys.exit(main(sys.argv[2:]))"))} "$@"
    '';
    preferLocalBuild = true;
    allowSubstitutes = false;
  } // { meta.description = "nix2aci's command line: run, validate, inspect, sign and verify container images"; };
in
rec {
  inherit command;

  # A derivation made by nix2aci's builder (nix2aci.build.main) from `spec`, the build
  # spec (a JSON-able attribute set); `roots`: the store paths whose runtime closure
  # the builder reads (closure-0, closure-1, ...); `attributes`: more of the derivation's.
  # The same spec gives the same derivation: what lets images share a layer's.
  runStep = { name, spec, roots ? [ ], attributes ? { } }: derivation ({
    inherit name;
    system = pkgs.system;
    builder = pkgs.nix2aciPython;
    args = builtins.tail (python "from nix2aci.build.main import main; sys.exit(main())");
    # The build spec: one JSON file in the build directory, named by $nix2aciSpecPath.
    nix2aciSpec = builtins.toJSON spec;
    passAsFile = [ "nix2aciSpec" ];
    # Root i's closure with every path's references, in the file closure-i.
    # Not structured attributes: with them Nix 2.8 adds each exported path's
    # closure size, computing a closure per path (seconds at 1,000 paths).
    exportReferencesGraph = builtins.concatLists (builtins.genList
      (index: [ "closure-${toString index}" "${builtins.elemAt roots index}" ])
      (builtins.length roots));
    preferLocalBuild = true;
  } // attributes)
  # The same spec as a Nix value, to inspect: nix-instantiate --eval -A busybox.nix2aci.image
  // { nix2aci = spec; };

  # An image with postprocess.sh: runStep with the command line that the script runs.
  runBuilder = { name, spec, roots }:
    runStep {
      inherit name roots;
      # postprocess.sh runs the command line: it names the derivation file of `command`,
      # which is no reference of the output (Nix scans an output only for the paths of
      # the build's inputs: their outputs, not their .drv files), so copying an image
      # copies no builder; `nix-store --realise` brings the command back after a
      # garbage collection (the image's own .drv keeps the .drv it names).
      spec = spec // { command = builtins.unsafeDiscardStringContext command.drvPath; };
      attributes = {
        # The command is built with the image, so postprocess.sh finds it built.
        nix2aciCommand = command;
        # Images are quick to rebuild and as large as their closure: never fetch them.
        allowSubstitutes = false;
      };
    };
}

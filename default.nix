# The images nix2aci builds, and its library: `nix-build -A busybox`.
#
# Every file pkgs/**/NAME.nix is an image, exposed here as NAME: adding a file is
# how an image is added. Its arguments are filled from the package set and the
# library, as nixpkgs' callPackage does.
{ pkgs ? import ./nix/package-set.nix { } }:
let
  lib = import ./nix { inherit pkgs; };

  callImage = file: overrides:
    let image = import file;
    in image (builtins.intersectAttrs (builtins.functionArgs image) (pkgs // lib) // overrides);

  # { NAME = path; } for every pkgs/**/NAME.nix.
  imageFiles = dir:
    builtins.foldl'
      (found: entry:
        let
          path = dir + "/${entry.name}";
          named = builtins.match "(.*)\\.nix" entry.name;
          more =
            if entry.type == "directory" then imageFiles path
            else if named != null then { ${builtins.head named} = path; }
            else { };
          clash = builtins.attrNames (builtins.intersectAttrs found more);
        in
        if clash != [ ] then throw "nix2aci: two image files under pkgs/ are named ${builtins.head clash}.nix"
        else found // more)
      { }
      (builtins.attrValues (builtins.mapAttrs (name: type: { inherit name type; }) (builtins.readDir dir)));

  images = builtins.mapAttrs (_: file: callImage file { }) (imageFiles ./pkgs);
in
images // rec {
  inherit lib pkgs;
  # The command line: nix-build -A nix2aci, nix-env -f . -iA nix2aci.
  inherit (lib) nix2aci;

  # Variants of the images above.
  busyboxStatic = callImage ./pkgs/linux/busybox.nix { static = true; busybox = pkgs.busyboxStatic; };
  busyboxThin = callImage ./pkgs/linux/busybox.nix { thin = true; };
  helloThin = callImage ./pkgs/hello.nix { thin = true; };
  bbpythonThin = callImage ./pkgs/bbpython.nix { thin = true; };
  etcdThin = callImage ./pkgs/etcd.nix { thin = true; };
  busyboxArchive = callImage ./pkgs/linux/busyboxImage.nix { format = "docker-archive"; };
  # busybox for arm64 (linux/arm64), and one image of both platforms.
  busyboxArm64Image = callImage ./pkgs/linux/busyboxImage.nix { busybox = pkgs.busyboxArm64; };
  busyboxMultiArch = lib.buildOCIIndex { images = [ images.busyboxImage busyboxArm64Image ]; };
}

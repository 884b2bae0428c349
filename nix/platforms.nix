# Nix system names ("x86_64-linux") to the platform names of the image formats.
let
  # Nix CPU names to appc arch names (appc's types.ValidOSArch), by appc os.
  appcArch = {
    linux = {
      x86_64 = "amd64"; i686 = "i386"; i586 = "i386"; i386 = "i386";
      aarch64 = "aarch64"; aarch64_be = "aarch64_be";
      armv6l = "armv6l"; armv7l = "armv7l"; armv7b = "armv7b";
      powerpc64 = "ppc64"; powerpc64le = "ppc64le"; s390x = "s390x";
    };
    freebsd = { x86_64 = "amd64"; i686 = "i386"; armv6l = "arm"; armv7l = "arm"; };
    darwin = { x86_64 = "x86_64"; i686 = "i386"; };
  };

  # Nix CPU names to Go's GOARCH (and GOARM variant), as OCI image configs name them.
  goArch = {
    x86_64 = { architecture = "amd64"; }; i686 = { architecture = "386"; }; i586 = { architecture = "386"; };
    aarch64 = { architecture = "arm64"; }; armv7l = { architecture = "arm"; variant = "v7"; };
    armv6l = { architecture = "arm"; variant = "v6"; }; powerpc64 = { architecture = "ppc64"; };
    powerpc64le = { architecture = "ppc64le"; }; s390x = { architecture = "s390x"; };
    riscv64 = { architecture = "riscv64"; }; loongarch64 = { architecture = "loong64"; };
  };

  # "x86_64-linux" -> { cpu = "x86_64"; kernel = "linux"; }
  parse = system:
    let parts = builtins.match "([^-]+)-(.+)" system;
    in if parts == null then throw "nix2aci: cannot read the Nix system '${system}' (expected CPU-KERNEL, e.g. x86_64-linux)"
    else { cpu = builtins.elemAt parts 0; kernel = builtins.elemAt parts 1; };
in
{
  # The appc { os; arch; } of a Nix system, or an evaluation error saying which
  # argument to set instead.
  appc = system:
    let
      inherit (parse system) cpu kernel;
      arch = appcArch.${kernel}.${cpu} or null;
    in
    if arch == null then
      throw "nix2aci: the Nix system '${system}' has no appc os/arch; pass os and arch explicitly"
    else { os = kernel; inherit arch; };

  # The OCI { os; architecture; variant?; } (Go's names) of a Nix system.
  oci = system:
    let
      inherit (parse system) cpu kernel;
      arch = goArch.${cpu} or (throw "nix2aci: the Nix system '${system}' has no OCI architecture; pass os and arch explicitly");
    in { os = kernel; } // arch;
}

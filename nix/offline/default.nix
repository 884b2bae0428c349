# The offline package set: a few real packages built from the host's Debian files,
# for machines without nixpkgs. Each package is a real store path with real
# references, built with the sandbox on.
#
# What needs the host at build time (gcc, /bin/sh, /usr/bin/python3) is reached
# through the sandbox paths that ./scripts/setup configures:
#   extra-sandbox-paths = /usr /lib /lib64 /bin /etc/alternatives
{ system ? builtins.currentSystem }:
let
  host = import ./host.nix;

  # Debian's multiarch triplet and dynamic loader for the systems the set supports.
  platform = {
    x86_64-linux = { triplet = "x86_64-linux-gnu"; loader = "ld-linux-x86-64.so.2"; debianArch = "amd64"; };
    aarch64-linux = { triplet = "aarch64-linux-gnu"; loader = "ld-linux-aarch64.so.1"; debianArch = "arm64"; };
  }.${system} or (throw "nix2aci offline package set: system '${system}' is not supported (x86_64-linux, aarch64-linux are)");

  # Installed Debian packages as store paths: programs with /usr stripped, each
  # library package its own store path (see debian.nix). libc6 keeps the name the
  # set's C library always had.
  debian = import ./debian.nix {
    inherit system platform;
    dpkg = import ./dpkg.nix { arch = platform.debianArch; };
    names.libc6 = "glibc-host";
  };

  # The static busybox of Debian's busybox-static, alone in a store path. It is
  # also the builder of the set's own packages, so they need nothing from the host.
  busyboxBinary = host.file { path = "/usr/bin/busybox"; name = "busybox-static-host"; debianPackage = "busybox-static"; };
  shell = "${busyboxBinary}/busybox";

  # A derivation whose builder is the script `build`, run by busybox sh.
  runBusybox = name: attrs: build: derivation ({
    inherit name system;
    builder = shell;
    args = [ "sh" "-euc" build ];
    PATH = "${busyboxBinary}";
  } // attrs);
in
rec {
  inherit system;

  # The interpreter that runs nix2aci's builder: Debian's python3 with python3-attr
  # and python3-jsonschema, visible in the sandbox through /usr. postprocess.sh runs
  # it outside the build, where it also needs python3-gnupg.
  nix2aciPython =
    if builtins.pathExists "/usr/bin/python3" then "/usr/bin/python3"
    else throw "nix2aci offline package set: /usr/bin/python3 is missing; install python3, python3-attr, python3-jsonschema and python3-gnupg (./scripts/setup does)";

  busybox =
    let version = host.debianVersion "busybox-static";
    in runBusybox "busybox-${version}" { inherit version; pname = "busybox"; } ''
      mkdir -p $out/bin
      cp ${shell} $out/bin/busybox
      cd $out/bin
      for applet in $(./busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$applet"
      done
    '';

  cacert = import ./cacert.nix { inherit host runBusybox; };

  # Debian's busybox is static already.
  busyboxStatic = busybox;

  # Debian's static busybox for arm64 (busybox-static's .deb, fetched by
  # scripts/setup): built here, run on aarch64-linux. As with nixpkgs' pkgsCross,
  # `system` is where it is built and `stdenv.hostPlatform.system` where it runs,
  # which is what images take their platform from (nix/common.nix: systemOf).
  # The applet links come from its own `--list`, run with qemu-user-static.
  busyboxArm64 =
    let
      inherit (import ./foreign.nix { }) deb;
      busyboxStatic = deb { package = "busybox-static"; arch = "arm64"; };
      emulator =
        if system == "aarch64-linux" then ""
        else if builtins.pathExists "/usr/bin/qemu-aarch64-static" then "/usr/bin/qemu-aarch64-static"
        else throw "nix2aci offline package set: the arm64 busybox needs /usr/bin/qemu-aarch64-static to list its applets; install the Debian package qemu-user-static (./scripts/setup does)";
    in
    runBusybox "busybox-aarch64-linux-${busyboxStatic.upstream}" {
      pname = "busybox";
      version = busyboxStatic.upstream;
      inherit (busyboxStatic) deb;
      debianVersion = busyboxStatic.version;
    } ''
      busybox dpkg-deb -x $deb unpacked
      mkdir -p $out/bin
      cp unpacked/bin/busybox $out/bin/busybox
      cd $out/bin
      for applet in $(${emulator} ./busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$applet"
      done
    '' // { stdenv.hostPlatform.system = "aarch64-linux"; };

  # The host's C library: Debian libc6's shared libraries and loader in $out/lib
  # (glibc-host-VERSION), the base of every imported program's closure.
  glibc = debian.libraries.libc6;

  # Debian's Python 3.11 with its standard library: $out/bin/python3 finds its
  # prefix ($out/lib/python3.11) next to itself; the extension modules' libraries
  # (libssl3, libsqlite3-0, ...) are store paths of their own.
  python3 = debian.program {
    pname = "python3";
    debianPackages = [ "python3.11-minimal" "python3-minimal" "libpython3.11-minimal" "libpython3.11-stdlib" ];
  };

  # Debian's etcd server (a Go program that links libc): $out/bin/etcd.
  etcd = debian.program { pname = "etcd"; debianPackages = [ "etcd-server" ]; };

  # The importer, for more programs of the host (offline set only; nixpkgs has
  # the packages themselves): debianImport.program { pname; debianPackages; }.
  debianImport = { inherit (debian) program libraries; };

  # A dynamically linked program whose runtime closure is { hello, glibc-host }.
  hello = derivation {
    name = "hello-1.0";
    pname = "hello";
    version = "1.0";
    inherit system;
    builder = "/bin/sh";
    src = ./hello.c;
    PATH = "/usr/bin:/bin";
    args = [ "-euc" ''
      mkdir -p $out/bin
      # Compiling a copy keeps the source's store path out of the binary's symbols.
      cp $src hello.c
      gcc -O2 -o $out/bin/hello hello.c \
        -Wl,--dynamic-linker=${glibc}/lib/${platform.loader} \
        -Wl,-rpath,${glibc}/lib
    '' ];
  };
}

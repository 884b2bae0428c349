# Installed Debian packages as Nix store paths, shaped as a nixpkgs user gets them.
#
#   program { pname = "python3"; debianPackages = [ ... ]; }
#     one store path with the files of the named packages, /usr stripped
#     (/usr/bin/python3.11 -> $out/bin/python3.11), so a program that finds its
#     data relative to its executable (Python's prefix) finds it in the store.
#   libraries.NAME
#     the shared libraries (*.so*) of the Debian package NAME in $out/lib: one
#     store path per library package, like nixpkgs' zlib or openssl.
#
# Which libraries: the Pre-Depends and Depends of the named packages, followed
# transitively through library packages only. dpkg-shlibdeps writes every library
# an ELF file links against into the Depends of the package that ships the file,
# so a package without shared libraries (tzdata, dpkg, adduser) adds nothing and
# its own dependencies are not followed. Of `a | b` the first installed wins.
#
# Every ELF file is rewritten with patchelf (nix/offline/debian-import.py):
# interpreter -> the loader of libraries.libc6, rpath -> the lib directories of
# the dependencies, then --shrink-rpath, so that Nix's reference scan keeps in the
# closure exactly the libraries the files need. Nothing in the result points at
# the host: absolute symlinks are rewritten into the store path or dropped.
#
# The host's files enter the store at evaluation time with builtins.path (their
# content, not their host path, is the input), and each derivation records the
# Debian versions it was made from: a changed host package is a new store path.
{ system
, platform # { triplet; loader; } of nix/offline/default.nix
, dpkg ? import ./dpkg.nix { }
  # Store names for some Debian packages, e.g. { libc6 = "glibc-host"; }.
, names ? { }
}:
let
  inherit (builtins) any elem filter head listToAttrs map match substring stringLength;

  python =
    if builtins.pathExists "/usr/bin/python3" && builtins.pathExists "/usr/bin/patchelf" then "/usr/bin/python3"
    else throw "nix2aci offline package set: importing Debian programs needs /usr/bin/python3 and /usr/bin/patchelf; install the Debian packages python3 and patchelf (./scripts/setup does)";

  # Store path names allow [A-Za-z0-9+._?=-]; Debian versions may also hold ~ and :.
  storeSafe = builtins.replaceStrings [ "~" ":" ] [ "_" "_" ];

  hasPrefix = prefix: string: substring 0 (stringLength prefix) string == prefix;
  under = dir: path: path == dir || hasPrefix "${dir}/" path;

  # On a merged-/usr host (Debian 12) /lib, /bin, ... are links into /usr, but dpkg
  # still records /lib/x86_64-linux-gnu/libc.so.6: such paths are read through /usr.
  rootEntries = builtins.readDir "/";
  canonical = path:
    let top = match "/(bin|sbin|lib|lib64)(/.*)?" path;
    in if top != null && (rootEntries.${head top} or null) == "symlink" then "/usr${path}" else path;

  # What a program keeps: the files under /usr (and /bin, /lib, ... on a host
  # without merged /usr); /etc and init scripts are the host's configuration.
  programRoot = path: match "/(usr|bin|sbin|lib|lib64)(/.*)?" path != null;

  # The directories the loader searches by default, where Debian puts shared
  # libraries. Private subdirectories (gconv modules, plugins) are not imported.
  libraryDirs = [ "/usr/lib" "/usr/lib/${platform.triplet}" "/usr/lib64" "/lib" "/lib/${platform.triplet}" "/lib64" ];
  isLibraryFile = path:
    let m = match "(.*)/[^/]*\\.so(\\.[^/]*)?" path;
    in m != null && elem (head m) libraryDirs;

  # Memoized per package name (lazy attribute values): the library files and the
  # library packages each installed package depends on directly.
  info = builtins.mapAttrs
    (name: package:
      if package == null then null
      else rec {
        files = map canonical package.files;
        libraryFiles = filter isLibraryFile files;
        isLibrary = libraryFiles != [ ];
        libraryDepends = filter (dependency: dependency != null && info.${dependency}.isLibrary)
          (map dpkg.firstInstalled package.depends);
      })
    dpkg.packages;

  # A package's info; for a package that is not installed, dpkg.require's error.
  infoOf = name:
    let i = info.${name} or null;
    in if i != null then i else builtins.seq (dpkg.require name) (throw "unreachable");

  # The library packages reachable from `roots` through library packages.
  libraryClosure = roots: map (item: item.key) (builtins.genericClosure {
    startSet = map (key: { inherit key; }) roots;
    operator = item: map (key: { inherit key; }) (infoOf item.key).libraryDepends;
  });

  # A library's dependencies: its closure without itself and without packages
  # that need it in turn. Store paths cannot refer to each other in a cycle
  # (libc6 and libgcc-s1 depend on each other): the loader shares a library
  # already loaded by soname, and the program itself always loads libc first.
  libraryDependencies = name:
    filter (other: other != name && !(elem name (libraryClosure [ other ]))) (libraryClosure [ name ]);

  # A store path of the host files of one Debian package, filtered at evaluation.
  hostFiles = { package, keep }:
    let
      record = dpkg.require package;
      wanted = listToAttrs (map (path: { name = path; value = true; }) keep);
    in
    builtins.path {
      name = "debian-${package}-${storeSafe record.version}-files";
      path = "/";
      # Nix 2.8 names the children of / "//usr"; later versions may say "/usr".
      filter = path: _type: wanted ? ${if hasPrefix "//" path then substring 1 (stringLength path) path else path};
    };

  versionsOf = packages: map (package: "${package}=${(dpkg.require package).version}") packages;

  # The one derivation shape of both kinds; debian-import.py does the work.
  importDerivation = { pname, version, debianPackages, kind, sources, dependencies, loader ? null }:
    derivation {
      name = "${pname}-${storeSafe version}";
      inherit pname version system;
      builder = python;
      args = [ "-I" "-B" ./debian-import.py ];
      # Host tools (patchelf) come through the sandbox's /usr.
      PATH = "/usr/bin:/bin";
      # In the derivation, so that a new Debian revision is a new store path even
      # when the imported files happen to be identical.
      debianVersions = versionsOf debianPackages;
      NIX2ACI_IMPORT_SPEC = builtins.toJSON {
        inherit kind loader;
        inherit (platform) triplet;
        loaderName = platform.loader;
        sources = map toString sources;
        dependencies = map (dependency: "${dependency}") dependencies;
      };
    } // dpkg.provenance debianPackages // {
      inherit debianPackages;
      # The library store paths it was built against (its closure keeps those it links).
      libraries = dependencies;
    };

  libraries = builtins.mapAttrs
    (name: i:
      if i == null then builtins.seq (dpkg.require name) (throw "unreachable")
      else if !i.isLibrary then
        throw "nix2aci offline package set: the Debian package '${name}' has no shared libraries in ${builtins.concatStringsSep ", " libraryDirs}; import it with debianImport.program instead"
      else
        let record = dpkg.require name;
        in importDerivation {
          pname = names.${name} or name;
          version = record.upstream;
          debianPackages = [ name ];
          kind = "library";
          sources = [
            (hostFiles {
              package = name;
              keep = i.libraryFiles ++ filter (dir: elem dir i.files) libraryDirs ++ [ "/usr" ];
            })
          ];
          dependencies = map (dependency: libraries.${dependency}) (libraryDependencies name);
          # libc.so.6 has an interpreter (it can be run); libc6's own loader is used
          # there, and libc6's dependencies cannot refer back to it.
          loader = if elem name (libraryClosure [ "libc6" ]) then null else "${libraries.libc6}/lib/${platform.loader}";
        })
    info;

  # Documentation (nixpkgs moves it to other outputs) and the host's service
  # integration (systemd units, binfmt and tmpfiles registrations), which name
  # host paths and mean nothing in a container.
  defaultExclude = [
    "/usr/share/doc" "/usr/share/man" "/usr/share/info" "/usr/share/lintian" "/usr/share/bug"
    "/usr/lib/systemd" "/usr/lib/binfmt.d" "/usr/lib/tmpfiles.d" "/usr/lib/sysusers.d" "/usr/share/binfmts"
  ];
in
{
  inherit libraries dpkg;

  # One store path with the files of `debianPackages` (the first one's upstream
  # version unless `version` says otherwise), its libraries as their own paths.
  # `exclude`: path prefixes on the host that are left out (documentation).
  program = { pname, debianPackages, version ? (dpkg.require (head debianPackages)).upstream, exclude ? defaultExclude }:
    let
      dependencies = filter (name: !(elem name debianPackages)) (libraryClosure debianPackages);
      keep = package: filter
        (path: programRoot path && !(any (prefix: under prefix path) exclude))
        (infoOf package).files;
    in
    importDerivation {
      inherit pname version debianPackages;
      kind = "program";
      sources = map (package: hostFiles { inherit package; keep = keep package; }) debianPackages;
      dependencies = map (name: libraries.${name}) dependencies;
      loader = "${libraries.libc6}/lib/${platform.loader}";
    };
}

# dpkg's database of installed packages, read at evaluation time.
#
# /var/lib/dpkg/status (~700 KB) is split once, in one regex pass, and indexed by
# package name; a package's fields, dependencies and file list are only parsed
# when something asks for that package (attribute values are lazy and memoized).
#
# `arch`: the Debian architecture ("amd64", "arm64") preferred when a package is
# installed for several (multiarch); null takes the first installed one.
{ arch ? null
, status ? "/var/lib/dpkg/status"
, info ? "/var/lib/dpkg/info"
}:
let
  inherit (builtins) elemAt filter head length listToAttrs map match split;

  lines = text: filter (line: builtins.isString line && line != "") (split "\n" text);

  # split's captures alternate with the text between them:
  # [ "" [ NAME1 ] BODY1 [ NAME2 ] BODY2 ... ]; the leading "\n\n" lets the first
  # stanza match like the others.
  pieces =
    if builtins.pathExists status
    then split "\n\nPackage: ([^\n]*)\n" ("\n\n" + builtins.readFile status)
    else [ "" ];
  stanzas = builtins.genList
    (i: { name = head (elemAt pieces (2 * i + 1)); body = elemAt pieces (2 * i + 2); })
    ((length pieces - 1) / 2);

  # One-line fields only (Depends, Version, ...): continuation lines start with a
  # space and are skipped, so Description and Conffiles never cost a regex.
  fieldsOf = body: listToAttrs (builtins.concatMap
    (line:
      let m = match "([A-Za-z0-9-]+): (.*)" line;
      in if m == null then [ ] else [{ name = elemAt m 0; value = elemAt m 1; }])
    (lines body));

  # "want ok installed" (want is install or hold); removed packages whose
  # configuration files remain ("deinstall ok config-files") have no files.
  isInstalled = fields: match "[a-z]+ ok installed" (fields.Status or "") != null;

  # "a (>= 1), b:any | c" -> [ [ "a" ] [ "b" "c" ] ]: groups of alternatives,
  # version constraints and architecture qualifiers dropped.
  parseRelations = text:
    map
      (group: map
        (alternative: head (match "([^ :(]+).*" alternative))
        (filter builtins.isString (split " *\\| *" group)))
      (filter (group: builtins.isString group && group != "") (split " *, *" text));

  # The upstream part of a Debian version: epoch and Debian revision dropped
  # ("1:1.35.0-4+b1" -> "1.35.0"; the revision follows the last hyphen).
  upstreamVersion = version:
    let
      noEpoch = elemAt (match "([0-9]+:)?(.*)" version) 1;
      revised = match "(.*)-[^-]*" noEpoch;
    in
    if revised == null then noEpoch else head revised;

  record = name: fields: rec {
    inherit name fields;
    version = fields.Version;
    upstream = upstreamVersion version;
    architecture = fields.Architecture or "all";
    # dpkg names the file list PKG:ARCH.list for Multi-Arch: same packages.
    listFile =
      let qualified = "${info}/${name}:${architecture}.list";
      in if builtins.pathExists qualified then qualified else "${info}/${name}.list";
    # Every path the package installed, directories included, as dpkg recorded
    # it (so /lib/... on a merged-/usr host, where /lib is a link to usr/lib).
    files =
      if builtins.pathExists listFile
      then filter (path: path != "/.") (lines (builtins.readFile listFile))
      else throw "nix2aci offline package set: dpkg lists '${name}' as installed but ${listFile} is missing; reinstall it (apt-get install --reinstall ${name})";
    # Pre-Depends and Depends: what must be there for the package to work.
    depends = parseRelations (fields.Pre-Depends or "") ++ parseRelations (fields.Depends or "");
  };

  installedByName = builtins.mapAttrs
    (name: candidates:
      let
        installed = filter isInstalled (map (stanza: fieldsOf stanza.body) candidates);
        native = filter (fields: arch == null || fields.Architecture or "all" == arch || fields.Architecture or "all" == "all") installed;
      in
      if native != [ ] then record name (head native)
      else if installed != [ ] then record name (head installed)
      else null)
    (builtins.groupBy (stanza: stanza.name) stanzas);

  # Virtual package -> the names of the installed packages that provide it.
  providers = builtins.mapAttrs (_: entries: map (entry: entry.provider) entries)
    (builtins.groupBy (entry: entry.virtual)
      (builtins.concatMap
        (package: map (virtual: { inherit virtual; provider = package.name; })
          (builtins.concatLists (parseRelations (package.fields.Provides or ""))))
        (filter (package: package != null) (builtins.attrValues installedByName))));
in
rec {
  inherit upstreamVersion;

  # name -> the installed package's record, or null (listed but not installed).
  packages = installedByName;

  # The installed package `name` (a record: name, version, upstream, architecture,
  # fields, files, depends), or null when it is not installed.
  installed = name: installedByName.${name} or null;

  # Like `installed`, but an error that says what to install.
  require = name:
    let package = installed name;
    in if package != null then package
    else throw "nix2aci offline package set: the Debian package '${name}' is not installed; install it (apt-get install ${name}; ./scripts/setup installs the set's packages)";

  # What an SBOM says of a store path made from the installed packages `names`: each
  # package's name, full Debian version and architecture, and the first one's homepage
  # (the `debian` and `meta.homepage` attributes nix/common.nix's `provenance` reads).
  provenance = names: {
    debian = map (name: let package = require name; in {
      package = name;
      inherit (package) version;
      arch = package.architecture;
    }) names;
    meta.homepage = (require (head names)).fields.Homepage or null;
  };

  # The installed package that satisfies the dependency `name`: itself, or the
  # first installed package that provides the virtual package `name`; else null.
  resolve = name:
    if installed name != null then name
    else
      let found = builtins.filter (provider: installed provider != null) (providers.${name} or [ ]);
      in if found == [ ] then null else head found;

  # The first installed alternative of a group `a | b`, or null.
  firstInstalled = group:
    let found = filter (name: name != null) (map resolve group);
    in if found == [ ] then null else head found;
}

# Evaluation-time argument checking: only what must fail before anything builds.
#
# Everything else is checked once, by the Python models at build time. The
# patterns and tables used here are read from the same JSON files the models
# read, so the two sides cannot drift apart.
#
# A type is { description; check = value: bool; verify = path: value: value' }:
# verify returns the (normalised) value or throws "FUNCTION: PATH must be
# DESCRIPTION, got VALUE".
fn:
let
  inherit (builtins) isAttrs isBool isInt isList isString attrNames concatStringsSep;

  manifestSchema = builtins.fromJSON (builtins.readFile ../nix2aci/appc/image-manifest.schema.json);
  validOSArch = builtins.fromJSON (builtins.readFile ../nix2aci/appc/os-arch.json);
  goPlatforms = builtins.fromJSON (builtins.readFile ../nix2aci/oci/go-platforms.json);
  # What becomes file names and lines of files: the builder checks the same (nix2aci/build/basics.py).
  argumentSchema = builtins.fromJSON (builtins.readFile ../nix2aci/arguments.schema.json);

  # Strings are shown as JSON, so that a newline in one cannot break the message's line.
  show = value:
    if isString value then "the string ${builtins.toJSON value}"
    else if isInt value || isBool value then "${builtins.toJSON value}"
    else if value == null then "null"
    else if isList value then "a list"
    else if value ? outPath then "the package ${value.name or value.outPath}"
    else if isAttrs value then "an attribute set"
    else "a ${builtins.typeOf value}";

  fail = path: description: value:
    throw "${fn}: ${path} must be ${description}, got ${show value}";

  # A field's path as Nix writes it: ports.http.port, files."/etc/motd".
  join = path: key:
    let quoted = if builtins.match "[A-Za-z_][A-Za-z0-9_'-]*" key != null then key else builtins.toJSON key;
    in if path == "" then quoted else "${path}.${quoted}";

  mkType = description: predicate: {
    inherit description;
    check = predicate;
    verify = path: value: if predicate value then value else fail path description value;
  };

  # A string that matches a pattern of the manifest schema.
  pattern = definition:
    let d = manifestSchema.definitions.${definition};
    in mkType d.description (v: isString v && builtins.match d.pattern v != null);

  # A string that matches a pattern of the argument schema.
  argument = definition:
    let d = argumentSchema.definitions.${definition};
    in mkType d.description (v: isString v && builtins.match d.pattern v != null);

  # A user or group id: an integer, or a string of decimal digits.
  maxId = argumentSchema.definitions.id.maximum;
  isId = v: isInt v && v >= 0 && v <= maxId;
  isNumericId = v: isString v && builtins.match argumentSchema.definitions.numericId.pattern v != null
    && builtins.fromJSON v <= maxId;
  isAccountName = v: isString v && builtins.match argumentSchema.definitions.accountName.pattern v != null;
in
rec {
  inherit fail show;

  string = mkType "a string" isString;
  bool = mkType "true or false" isBool;
  int = mkType "an integer" isInt;
  absolutePath = mkType "an absolute path (a string starting with /)" (v: isString v && builtins.substring 0 1 v == "/");
  anything = mkType "any value" (_: true);
  intBetween = low: high: mkType "an integer from ${toString low} to ${toString high}" (v: isInt v && v >= low && v <= high);
  package = mkType "a package (a derivation or a store path)"
    (v: (isAttrs v && v ? outPath) || builtins.isPath v || (isString v && builtins.hasContext v));

  # A string that matches the POSIX ERE `regex` (whole string).
  mkPattern = description: regex: mkType description (v: isString v && builtins.match regex v != null);

  enum = values: mkType "one of ${concatStringsSep ", " (map (v: "\"${v}\"") values)}" (v: builtins.elem v values);

  acIdentifier = pattern "acIdentifier";
  acName = pattern "acName";

  # The paths, names and ids that become file names or lines of /etc/passwd and /etc/group
  # (see nix2aci/arguments.schema.json).
  imagePath = argument "imagePath";
  workingDirectory = argument "workingDirectory";
  hostname = argument "hostname";
  environmentName = argument "environmentName";
  fileNamePart = argument "fileNamePart";
  fileMode = argument "fileMode";
  derivationName = argument "derivationName";
  ociTag = argument "ociTag";
  imageName = argument "imageName";
  timestamp = argument "timestamp";
  positive = mkType "an integer from 1" (v: isInt v && v >= 1);
  id = intBetween 0 maxId;
  nonEmptyString = mkType "a non-empty string" (v: isString v && v != "");

  # A user or group of appc: a name, a numeric id, or an absolute path; numbers become
  # strings, as the manifest wants.
  userOrGroup =
    let description = "${argumentSchema.definitions.accountName.description}, "
      + "a numeric id from 0 to ${toString maxId} (an integer or a string of digits), or ${imagePath.description}";
    in {
      inherit description;
      verify = path: value:
        if isId value then toString value
        else if isAccountName value || isNumericId value || imagePath.check value then value
        else fail path description value;
    };

  # An OCI config's User: USER or USER:GROUP, each a name or a numeric id.
  ociUser = mkType
    ("USER or USER:GROUP, each ${argumentSchema.definitions.accountName.description} "
      + "or a numeric id from 0 to ${toString maxId}")
    (v: isString v && (
      let parts = builtins.match "([^:]*)(:([^:]*))?" v;
          ok = part: isAccountName part || isNumericId part;
      in parts != null && ok (builtins.elemAt parts 0) && (builtins.elemAt parts 2 == null || ok (builtins.elemAt parts 2))));

  # Command lines are lists: a string is never split into arguments.
  argv = {
    description = "a list of strings";
    verify = path: value:
      if isString value then
        throw "${fn}: ${path} must be a list of strings, got ${show value}; nix2aci never splits a string into arguments: write [ \"/bin/sh\" \"-c\" \"...\" ]"
      else (listOf string).verify path value;
  };

  nullOr = type: {
    description = "null or ${type.description}";
    verify = path: value: if value == null then null else type.verify path value;
  };

  listOf = type: {
    description = "a list of ${type.description}";
    verify = path: value:
      if !isList value then fail path "a list" value
      else builtins.genList (i: type.verify "${path}[${toString i}]" (builtins.elemAt value i)) (builtins.length value);
  };

  nonEmpty = type: {
    inherit (type) description;
    verify = path: value:
      if value == [ ] then throw "${fn}: ${path} must not be empty" else type.verify path value;
  };

  # An attribute set whose names are checked by `nameType` and values by `type`.
  attrsOf = nameType: type: {
    description = "an attribute set of ${type.description}";
    verify = path: value:
      if !isAttrs value || value ? outPath then fail path "an attribute set" value
      else builtins.mapAttrs
        (name: v: builtins.seq (nameType.verify "the name of ${join path name}" name) (type.verify (join path name) v))
        value;
  };

  # An attribute set with known fields, each with its documentation:
  # { name = required type "what it is"; other = optional type default "what it does"; }.
  # An unknown field is an error that lists the known ones. `fields` stays readable, so
  # the documentation can be listed (nix/default.nix: lib.arguments).
  required = type: doc: { inherit type doc; };
  optional = type: default: doc: { inherit type default doc; };
  record = fields: {
    inherit fields;
    description = "an attribute set with ${concatStringsSep ", " (attrNames fields)}";
    verify = path: value:
      let unknown = attrNames (removeAttrs value (attrNames fields));
      in
      if !isAttrs value || value ? outPath then fail path "an attribute set" value
      else if unknown != [ ] then
        throw "${fn}: unknown ${if path == "" then "argument " else "field ${path}."}'${builtins.head unknown}'; allowed: ${concatStringsSep ", " (attrNames fields)}"
      else builtins.mapAttrs
        (name: field:
          if value ? ${name} then field.type.verify (join path name) value.${name}
          else if field ? default then field.type.verify (join path name) field.default
          else throw "${fn}: ${join path name} is required")
        fields;
  };

  # os and arch: the os must be in `table`, and arch in its os's list.
  osArch = table: names: { os, arch }:
    if !(table ? ${os}) then
      throw "${fn}: os must be one of ${concatStringsSep ", " (attrNames table)} (${names} os names), got \"${os}\""
    else if !(builtins.elem arch table.${os}) then
      throw "${fn}: arch must be one of ${concatStringsSep ", " table.${os}} for os \"${os}\" (${names} arch names), got \"${arch}\""
    else { inherit os arch; };

  # appc's types.ValidOSArch, and Go's GOOS/GOARCH as OCI uses them.
  appcOsArch = osArch validOSArch "appc's";
  ociOsArch = osArch goPlatforms "Go's";
}

# buildOCIIndex: one image for several platforms. An OCI image layout whose index.json
# names one image index (application/vnd.oci.image.index.v1+json) listing each
# image's manifest with its platform, as registries serve multi-architecture images.
#
# The images are buildOCIImage layouts: their platforms are known here (each image's
# `ociImage`), so two images of one platform fail at evaluation; the builder
# (nix2aci/oci/index.py) reads each image's config and checks that it says the same.
# Every blob is a link into the image's layout (or its layer's build): the index
# references its images and stores nothing twice.
{ runStep }:
let
  types = import ./types.nix "buildOCIIndex";
  inherit (types) required optional;

  arguments = types.record {
    images = required (types.nonEmpty (types.listOf types.package))
      "OCI image layouts made by buildOCIImage (format \"oci-layout\"), one per platform";
    name = optional (types.nullOr types.imageName) null "the index's name (in its store path's); default: the first image's";
    tag = optional (types.nullOr types.ociTag) null "the index's tag, its ref name in index.json; default: the first image's";
  };

  platformName = platform:
    "${platform.os}/${platform.arch}${if platform.variant == null then "" else "/${platform.variant}"}";

  # images[i] as messages name it.
  describe = index: image:
    "images[${toString index}]" + (if image ? ociImage then " (${image.ociImage.name}:${image.ociImage.tag})" else "");

  # images[i] checked: made by buildOCIImage, as an image layout. Returns its ociImage.
  checked = index: image:
    if !(image ? ociImage) then
      throw "buildOCIIndex: ${describe index image} must be an OCI image made by buildOCIImage, got ${types.show image}"
    else if image.ociImage.format != "oci-layout" then
      throw "buildOCIIndex: ${describe index image} must be an image layout (format = \"oci-layout\"), got format = \"${image.ociImage.format}\""
    else image.ociImage;

  # The first two images of one platform, as an error; null when each platform has one image.
  clash = images:
    let
      indexes = builtins.genList (i: i) (builtins.length images);
      platformOf = i: platformName (builtins.elemAt images i).ociImage.platform;
      pairs = builtins.concatMap (i: map (j: { inherit i j; }) (builtins.filter (j: j > i && platformOf j == platformOf i) indexes)) indexes;
    in
    if pairs == [ ] then null
    else
      let pair = builtins.head pairs;
      in "buildOCIIndex: ${describe pair.i (builtins.elemAt images pair.i)} and ${describe pair.j (builtins.elemAt images pair.j)} are both for ${platformOf pair.i}; an index holds one image per platform";
in
{
  inherit arguments;

  build = userArguments:
    let
      args = arguments.verify "" userArguments;
      described = builtins.genList (i: checked i (builtins.elemAt args.images i)) (builtins.length args.images);
      first = builtins.head described;
      name = if args.name != null then args.name else first.name;
      tag = if args.tag != null then args.tag else first.tag;
      problem = clash args.images;
    in
    builtins.deepSeq described (
      if problem != null then throw problem
      else runStep {
        name = "oci-index-${baseNameOf name}-${tag}";
        spec = {
          format = "oci-index";
          inherit tag;
          images = map (image: { layout = "${image}"; inherit (image.ociImage) platform; }) args.images;
        };
        attributes.allowSubstitutes = false;
      } // { inherit (args) images; });
}

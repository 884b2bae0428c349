# The host's CA bundle (Debian's ca-certificates) where nixpkgs' cacert keeps it:
# $out/etc/ssl/certs/ca-bundle.crt.
{ host, runBusybox }:
let
  version = host.debianVersion "ca-certificates";
  bundle = host.file { path = "/etc/ssl/certs/ca-certificates.crt"; name = "ca-certificates-host"; debianPackage = "ca-certificates"; };
in
runBusybox "cacert-host-${version}" { inherit version; pname = "cacert"; } ''
  mkdir -p $out/etc/ssl/certs
  cp ${bundle}/ca-certificates.crt $out/etc/ssl/certs/ca-bundle.crt
'' // host.provenance [ "ca-certificates" ]

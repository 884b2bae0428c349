# hello: a fat ACI of a dynamically linked program and its C library.
{ mkACI, hello }:
mkACI {
  packages = [ hello ];
  exec = [ "/bin/hello" ];
}

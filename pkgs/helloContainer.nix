# hello as an OCI runtime bundle: runc prints "Hello, world!".
{ buildContainer, hello }:
buildContainer {
  args = [ "${hello}/bin/hello" ];
}

# hello: an ACI of a dynamically linked program and its C library; fat by default,
# with `thin = true` its store paths are mounted from the host.
{ mkACI, hello, thin ? false }:
mkACI {
  packages = [ hello ];
  name = if thin then "hello-thin" else "hello";
  exec = [ "/bin/hello" ];
  inherit thin;
}

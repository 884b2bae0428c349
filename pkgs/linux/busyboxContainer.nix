# busybox as an OCI runtime bundle: `runc run --bundle ./result ID` runs a shell.
{ buildContainer, busybox }:
buildContainer {
  args = [ "${busybox}/bin/sh" ];
  packages = [ busybox ];
  env.PATH = "/bin";
  hostname = "busybox";
}

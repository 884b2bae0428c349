# busybox as an OCI image layout: `skopeo copy oci:./result:1.35.0 ...`, or
# `umoci unpack --image ./result:1.35.0 bundle`.
{ buildOCIImage, busybox }:
buildOCIImage {
  packages = [ busybox ];
  entrypoint = [ "/bin/sh" ];
  cmd = [ "-c" "echo Hello from busybox" ];
  env.PATH = "/bin";
  workingDir = "/";
  user = "0:0";
  exposedPorts = [ "8080/tcp" ];
  labels."org.opencontainers.image.title" = "busybox";
}

# busybox as an OCI image layout: `skopeo copy oci:./result:1.35.0 ...`, or
# `umoci unpack --image ./result:1.35.0 bundle`. Like Docker Hub's busybox, it sets
# Cmd, not Entrypoint: `docker run IMAGE /bin/busybox echo hi` runs that command.
# `format = "docker-archive"` (busyboxArchive) gives result/busybox-1.35.0.tar for `docker load`.
{ buildOCIImage, busybox, format ? "oci-layout" }:
buildOCIImage {
  inherit format;
  packages = [ busybox ];
  cmd = [ "/bin/sh" "-c" "echo Hello from busybox" ];
  env.PATH = "/bin";
  workingDir = "/";
  user = "0:0";
  exposedPorts = [ "8080/tcp" ];
  labels."org.opencontainers.image.title" = "busybox";
}

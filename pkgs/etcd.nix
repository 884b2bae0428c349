# etcd: a single etcd server; arguments after the image's are etcd's flags
# (--data-dir, --listen-client-urls, ...). Fat by default; with `thin = true` the
# store paths are mounted from the host.
{ mkACI, etcd, thin ? false }:
mkACI {
  packages = [ etcd ];
  name = if thin then "etcd-thin" else "etcd";
  exec = [ "/bin/etcd" ];
  inherit thin;
  annotations.description = "etcd: a distributed, reliable key-value store";
}

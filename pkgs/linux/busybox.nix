# busybox: a fat ACI of busybox's closure; with `thin = true` the store paths are
# mounted from the host; with `static = true` the one self-contained busybox path
# is the whole root filesystem.
{ mkACI, busybox, static ? false, thin ? false }:
mkACI {
  packages = [ busybox ];
  name = if static then "busybox-static" else if thin then "busybox-thin" else "busybox";
  exec = [ "/bin/busybox" "sh" ];
  inherit static thin;
  annotations.description = "BusyBox: the Swiss Army knife of embedded Linux";
}

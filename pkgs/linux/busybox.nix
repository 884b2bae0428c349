# busybox: a fat ACI of busybox's closure, or with `static = true` the one
# self-contained busybox path as the whole root filesystem.
{ mkACI, busybox, static ? false }:
mkACI {
  packages = [ busybox ];
  name = if static then "busybox-static" else "busybox";
  exec = [ "/bin/busybox" "sh" ];
  inherit static;
  annotations.description = "BusyBox: the Swiss Army knife of embedded Linux";
}

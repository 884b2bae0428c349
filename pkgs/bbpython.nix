# bbpython: busybox and Python 3 in one image, `sh` and `python3` both on /bin;
# it runs python3, `--exec /bin/sh` gives the shell. Fat by default (no host files
# at all: the offline set's python3 is Debian's, its libraries imported as store
# paths); with `thin = true` the store paths are mounted from the host.
{ mkACI, busybox, python3, thin ? false }:
mkACI {
  packages = [ python3 busybox ];
  name = if thin then "bbpython-thin" else "bbpython";
  exec = [ "/bin/python3" ];
  inherit thin;
  annotations.description = "BusyBox and Python 3";
}

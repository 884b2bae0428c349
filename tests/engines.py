"""The real container engines as test infrastructure: podman 4.3, Docker Engine 20.10, containerd 1.6 and
buildah 1.28 from Debian, each with private state under a temporary directory.

None of them reads or writes the user's configuration or state (~/.config, /etc/containers, /etc/docker,
/var/lib/docker, /run/containerd, ...): every configuration file is the test's own, and every engine runs in a
mount namespace of its own whose /run is a directory of the test (``private_run``), because runc's state,
containerd's shim sockets and netavark's lock live under fixed paths in /run. Mounts made there end with the
namespace. What is left shared is containers/image's: its blob-info cache (/var/lib/containers/cache, the same
file skopeo writes as root), and the copy of an archive that ``podman load`` unpacks in /var/tmp and removes;
podman 4.3 and buildah 1.28 have no setting that moves either.

Daemons are started by fixtures, waited for by polling a client (never a fixed sleep), and stopped by PID even
when the test failed: TERM, then KILL; the containers and processes they leave behind are killed and deleted
and fail the test, as do mounts left under their directories.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from conftest import PATIENCE, require, run_guarded

# Debian's programs only: a docker client elsewhere on PATH may be another version, and the daemons start
# containerd, runc and docker-init from PATH.
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"
REGISTRY = "/usr/bin/docker-registry"
# How long a daemon may take to stop on SIGTERM before it is killed (dockerd takes about 2 s here).
STOP_PATIENCE = 30
# containers.conf for podman and buildah. crun cannot start containers on these hosts; root here cannot raise its
# hard limits to podman's default ulimits; cgroupfs and the file events log need no systemd.
CONTAINERS_CONF = """\
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{tmp}"
image_copy_tmp_dir = "{tmp}"

[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[network]
network_config_dir = "{networks}"
"""
# Accept every image: the tests load unsigned images, and /etc/containers/policy.json is the user's.
ACCEPT_ANYTHING = '{"default": [{"type": "insecureAcceptAnything"}]}\n'


def private_run(run_dir: Path) -> list[str]:
    """The command prefix that runs a program in a mount namespace of its own in which the directory
    ``run_dir`` is /run; the namespace, and every mount made in it, ends with the program's last process."""
    require("unshare")
    return ["unshare", "--mount", "--propagation", "private", "--",
            "sh", "-c", 'mount --bind "$0" /run && exec "$@"', str(run_dir)]  # fmt: skip


def engine_environment(**variables: str | Path) -> dict[str, str]:
    """This process's environment with Debian's programs on PATH and ``variables`` added."""
    return {**os.environ, "PATH": SYSTEM_PATH, **{name: str(value) for name, value in variables.items()}}


def private_directories(directory: Path, *names: str) -> list[Path]:
    """The subdirectories ``names`` of ``directory``, created."""
    paths = [directory / name for name in names]
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
    return paths


def new_name(prefix: str) -> str:
    """A fresh container name starting with ``prefix``."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def loaded_images(output: str) -> list[str]:
    """The image names in the output of ``docker load`` or ``podman load`` ("Loaded image: NAME" lines;
    podman says "Loaded image(s): A,B" for several)."""
    names = []
    for line in output.splitlines():
        label, _, listed = line.partition(": ")
        if label in ("Loaded image", "Loaded image(s)"):
            names += listed.strip().split(",")
    return names


class ContainersTool:
    """podman or buildah (``program``) with containers/storage (vfs), containers.conf, registries.conf and the
    signature policy all its own under ``directory``. As a context manager: on leaving, even when the test
    failed, every container of this state is removed, then the test fails if anything it started is left."""

    program = ""
    remove_all: tuple[str, ...] = ()  # the arguments that remove (stopping first) every container

    def __init__(self, directory: Path) -> None:
        require(self.program)
        self.directory = directory
        self.run_dir, tmp, home, networks = private_directories(directory, "run", "tmp", "home", "networks")
        self.root = directory / "root"
        # podman refuses a runroot longer than 50 bytes (conmon's sockets lie under it): a short one in TMPDIR,
        # which the test session removes.
        self.runroot = Path(tempfile.mkdtemp(prefix="runroot-"))
        assert len(str(self.runroot)) <= 50, f"{self.runroot} is too long for podman's runroot: set a shorter TMPDIR"
        configuration = {
            "containers.conf": CONTAINERS_CONF.format(tmp=tmp, networks=networks),
            # podman insists on a driver in storage.conf, even with --storage-driver.
            "storage.conf": f'[storage]\ndriver = "vfs"\nrunroot = "{self.runroot}"\ngraphroot = "{self.root}"\n',
            "registries.conf": "",
            "policy.json": ACCEPT_ANYTHING,
        }
        for name, text in configuration.items():
            (directory / name).write_text(text)
        self.policy = directory / "policy.json"
        self.home = home
        self.environment = engine_environment(
            CONTAINERS_CONF=directory / "containers.conf",
            CONTAINERS_STORAGE_CONF=directory / "storage.conf",
            CONTAINERS_REGISTRIES_CONF=directory / "registries.conf",
            TMPDIR=tmp,
            HOME=home,
            XDG_CONFIG_HOME=home / ".config",
            XDG_DATA_HOME=home / ".local/share",
            XDG_RUNTIME_DIR=self.run_dir,
        )

    def storage_environment(self) -> dict[str, str]:
        """The variables that point another containers tool (skopeo) at this storage's configuration."""
        return {"CONTAINERS_STORAGE_CONF": str(self.directory / "storage.conf")}

    def __call__(self, *args: str | Path) -> str:
        """The output of ``PROGRAM ARGS`` on this private state; a failure or a hang fails the test."""
        command = [self.program, "--root", self.root, "--runroot", self.runroot, "--storage-driver", "vfs", *args]
        return run_guarded([*private_run(self.run_dir), *map(str, command)], env=self.environment).stdout

    def __enter__(self) -> ContainersTool:
        return self

    def __exit__(self, *exception) -> None:
        try:
            self(*self.remove_all)
        finally:
            assert_nothing_left(self.directory, self.program, [self.run_dir])


class Podman(ContainersTool):
    """podman 4.3 on private state (see ``ContainersTool``)."""

    program = "podman"
    remove_all = ("rm", "--all", "--force")

    def pull(self, reference: str, *options: str, policy: Path | None = None) -> str:
        """Pull ``reference`` (e.g. ``oci:DIR:TAG``) with ``options`` under the signature ``policy`` (default: accept
        anything); return the image's id. ``oci:DIR:TAG`` is named ``layout_image_name(DIR)``."""
        return self("pull", "--quiet", "--signature-policy", policy or self.policy, *options, reference).strip()

    def load(self, archive: Path) -> list[str]:
        """``podman load -i ARCHIVE``; return the names of the images loaded."""
        return loaded_images(self("load", "--signature-policy", self.policy, "-i", archive))

    def run(self, image: str, *argv: str) -> str:
        """The output of ``image`` (an id or a full name: a short one would be resolved through the host's
        short-name aliases) run without a network, ``argv`` (if any) in place of its Cmd."""
        return self("run", "--rm", "--network", "none", image, *argv)


def layout_image_name(layout: Path) -> str:
    """The name podman 4.3 gives the image of ``podman pull oci:LAYOUT:TAG``: ``localhost`` followed by the
    layout's path, tag ``latest`` (the layout's tag is dropped; the path must be lower case)."""
    return f"localhost{layout}:latest"


class Buildah(ContainersTool):
    """buildah 1.28 on private state (see ``ContainersTool``); it runs containers with runc, as its
    containers.conf says (``--isolation chroot`` would work too, but only with the host's network)."""

    program = "buildah"
    remove_all = ("rm", "--all")

    def run(self, reference: str, *argv: str) -> str:
        """The output of ``argv`` run without a network in a working container made ``from`` ``reference``
        (e.g. ``oci:DIR:TAG``); the container is removed afterwards."""
        container = self("from", "--quiet", "--pull-never", "--signature-policy", self.policy, reference).strip()
        try:
            return self("run", "--network", "none", container, "--", *argv)
        finally:
            self("rm", container)


class DockerEngine:
    """A running dockerd of ``docker_engine``: Debian's docker client pointed at its socket, with a client
    configuration of its own."""

    def __init__(self, socket: Path, client_configuration: Path) -> None:
        self.socket = socket
        self.environment = engine_environment(DOCKER_CONFIG=client_configuration)

    def __call__(self, *args: str | Path) -> str:
        """The output of ``docker ARGS``; a failure or a hang fails the test."""
        return run_guarded([DOCKER, "-H", f"unix://{self.socket}", *map(str, args)], env=self.environment).stdout

    def load(self, archive: Path) -> list[str]:
        """``docker load -i ARCHIVE``; return the names of the images loaded."""
        return loaded_images(self("load", "-i", archive))

    def run(self, image: str, *argv: str) -> str:
        """The output of ``image`` run without a network, ``argv`` (if any) in place of its Cmd; the container
        is removed afterwards."""
        return self("run", "--rm", "--network", "none", image, *argv)

    def inspect(self, reference: str) -> dict:
        """``docker inspect`` of one image or container."""
        (found,) = json.loads(self("inspect", reference))
        return found


@contextlib.contextmanager
def docker_engine(directory: Path) -> Iterator[DockerEngine]:
    """dockerd 20.10 with all its state under ``directory`` (vfs storage, no iptables, no bridge, its own
    containerd), running until the block ends."""
    require(DOCKERD)
    require(DOCKER)
    data, exec_root, client = private_directories(directory, "data", "exec", "client")
    socket = directory / "docker.sock"
    configuration = directory / "daemon.json"
    # Its own configuration file: the default is /etc/docker/daemon.json, and the trust key goes to
    # /etc/docker/key.json unless it is told otherwise.
    configuration.write_text(json.dumps({"deprecated-key-path": str(directory / "key.json")}))
    # containerd's sockets lie under the exec root: their paths must stay within the 108 bytes of a socket's.
    assert len(str(exec_root / "containerd/containerd.sock.ttrpc")) < 100, f"{exec_root} is too long for sockets"
    engine = DockerEngine(socket, client)
    command = [
        DOCKERD, "--config-file", configuration, "--storage-driver", "vfs", "--iptables=false", "--ip6tables=false",
        "--bridge=none", "--data-root", data, "--exec-root", exec_root, "--pidfile", directory / "dockerd.pid",
        "-H", f"unix://{socket}",
    ]  # fmt: skip
    ready = [DOCKER, "-H", f"unix://{socket}", "info"]
    # runc keeps dockerd's containers under the exec root, not in /run.
    with daemon("dockerd", command, directory, lambda: answers(ready, engine.environment), [exec_root]):
        yield engine


class Containerd:
    """A running containerd of ``containerd_daemon``: ctr pointed at its socket, in a namespace of the tests.
    Images are unpacked with the native snapshotter (plain copies, like vfs)."""

    namespace = "nix2aci-test"

    def __init__(self, socket: Path, fifo_dir: Path) -> None:
        self.socket = socket
        self.fifo_dir = fifo_dir

    def __call__(self, *args: str | Path) -> str:
        """The output of ``ctr ARGS``; a failure or a hang fails the test."""
        command = ["ctr", "--address", self.socket, "--namespace", self.namespace, *args]
        return run_guarded(list(map(str, command)), env=engine_environment()).stdout

    def images(self) -> set[str]:
        """The names of the images in the namespace."""
        return set(self("images", "list", "--quiet").split())

    def import_archive(self, archive: Path) -> set[str]:
        """``ctr images import ARCHIVE``; return the names of the images that were new."""
        before = self.images()
        self("images", "import", "--snapshotter", "native", archive)
        return self.images() - before

    def run(self, image: str, *argv: str) -> str:
        """The output of ``image`` run, ``argv`` (if any) in place of its Cmd; the container is removed
        afterwards. It has a network namespace of its own with only a loopback (no ``--net-host``)."""
        # ctr makes the container's stdio FIFOs itself, in /run/containerd/fifo unless told otherwise.
        return self("run", "--rm", "--snapshotter", "native", "--fifo-dir", self.fifo_dir,
                    image, new_name("nix2aci-test-"), *argv)  # fmt: skip


@contextlib.contextmanager
def containerd_daemon(directory: Path) -> Iterator[Containerd]:
    """containerd 1.6 with all its state under ``directory``, running until the block ends. Its runtime is the
    default ``io.containerd.runc.v2``: Debian's containerd-shim-runc-v2 and runc, cgroupfs, nothing to set."""
    require("containerd")
    require("ctr")
    root, state, fifo_dir = private_directories(directory, "root", "state", "fifo")
    socket = directory / "containerd.sock"
    configuration = directory / "config.toml"
    # The CRI plugin is for Kubernetes and reads /etc/cni; debug and metrics would listen on fixed addresses.
    configuration.write_text(
        f'version = 2\nroot = "{root}"\nstate = "{state}"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{socket}"\n[ttrpc]\n  address = "{socket}.ttrpc"\n'
        '[debug]\n  address = ""\n[metrics]\n  address = ""\n'
    )
    ready = ["ctr", "--address", str(socket), "version"]
    command = ["containerd", "--config", configuration]
    with daemon("containerd", command, directory, lambda: answers(ready, engine_environment())):
        yield Containerd(socket, fifo_dir)


# The registry's configuration: filesystem storage and an address of the test's, its access log (one line per
# request, on stdout) in the daemon's log file; htpasswd authentication when the test asks for it.
REGISTRY_CONFIG = """\
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {storage}
http:
  addr: {address}
{auth}"""
REGISTRY_AUTH = """\
auth:
  htpasswd:
    realm: nix2aci-test
    path: {htpasswd}
"""
# An upload's last request, as the access log shows it: the PUT that completes it names the blob's digest.
BLOB_UPLOADED = re.compile(r'"PUT /v2/(\S+)/blobs/uploads/\S*[?&]digest=sha256%3A([0-9a-f]{64})\S* HTTP/[0-9.]+" 201 ')


# A request, as the access log shows it: its method and path, without the query.
REQUEST = re.compile(r'"([A-Z]+) (/v2/[^ ?"]*)\S* HTTP/[0-9.]+" ')


class Registry:
    """A running distribution registry of ``docker_registry``: its address (``host``, ``127.0.0.1:PORT``), its
    storage directory and its log, from which a test reads what was uploaded."""

    def __init__(self, host: str, storage: Path, log: Path) -> None:
        self.host = host
        self.storage = storage
        self.log = log

    def log_position(self) -> int:
        """Where the log ends now: what :meth:`uploads` reads from."""
        return self.log.stat().st_size

    def _log_until(self, since: int, manifest: str) -> str:
        """The log since the position ``since``, once it shows the PUT of ``manifest`` (``REPO/manifests/REF``),
        which a push sends last: the access log is written after each response, so it is polled for that line
        (the registry's own word, never a sleep)."""
        deadline = time.monotonic() + PATIENCE
        while True:
            with self.log.open("rb") as file:
                file.seek(since)
                text = file.read().decode(errors="replace")
            if f'"PUT /v2/{manifest} HTTP/' in text:
                return text
            if time.monotonic() > deadline:
                pytest.fail(f"the registry's log shows no PUT of {manifest}:\n{text[-4000:]}")
            time.sleep(0.05)

    def uploads(self, since: int, manifest: str) -> list[str]:
        """The digests (``sha256:HEX``) of the blobs uploaded since the log position ``since``, in order, up to the
        PUT of ``manifest`` (see :meth:`_log_until`)."""
        return [f"sha256:{digest}" for _, digest in BLOB_UPLOADED.findall(self._log_until(since, manifest))]

    def requests(self, since: int, manifest: str) -> list[str]:
        """The requests (``METHOD /v2/PATH``, query dropped) the registry answered since the log position
        ``since``, in order, up to the PUT of ``manifest`` (see :meth:`_log_until`)."""
        return [f"{method} {path}" for method, path in REQUEST.findall(self._log_until(since, manifest))]

    def blob_size(self, digest: str) -> int:
        """The size of the blob ``digest`` in the registry's own storage."""
        hexadecimal = digest.removeprefix("sha256:")
        return (
            (self.storage / "docker/registry/v2/blobs/sha256" / hexadecimal[:2] / hexadecimal / "data").stat().st_size
        )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def registry_answers(host: str) -> bool:
    """Whether the registry at ``host`` answers ``GET /v2/`` (200, or 401 when it asks for a login)."""
    try:
        with urllib.request.urlopen(f"http://{host}/v2/", timeout=5):
            return True
    except urllib.error.HTTPError as error:
        return error.code == 401
    except OSError:
        return False


@contextlib.contextmanager
def docker_registry(directory: Path, htpasswd: str | None = None) -> Iterator[Registry]:
    """Debian's distribution registry 2.8 with its storage under ``directory``, listening on a free port of
    127.0.0.1 over plain HTTP, and asking for a login when ``htpasswd`` (the lines of an htpasswd file, bcrypt
    hashes) is given; running until the block ends."""
    require(REGISTRY)
    (storage,) = private_directories(directory, "storage")
    host = f"127.0.0.1:{free_port()}"
    auth = ""
    if htpasswd is not None:
        (directory / "htpasswd").write_text(htpasswd)
        auth = REGISTRY_AUTH.format(htpasswd=directory / "htpasswd")
    configuration = directory / "registry.yml"
    configuration.write_text(REGISTRY_CONFIG.format(storage=storage, address=host, auth=auth))
    with daemon("docker-registry", [REGISTRY, "serve", configuration], directory, lambda: registry_answers(host)):
        yield Registry(host, storage, directory / "daemon.log")


@contextlib.contextmanager
def daemon(
    name: str, command: list[str | Path], directory: Path, ready: Callable[[], bool], state: Sequence[Path] = ()
) -> Iterator[subprocess.Popen]:
    """The daemon ``name`` (``command``) started in a mount namespace and session of its own with /run as
    ``directory``/run and its output in ``directory``/daemon.log, then waited for until ``ready()``. On leaving,
    even when the test failed, it is stopped by its PID; then the containers it left (their runc state in its
    /run or in ``state``), its processes and its mounts are cleaned up and fail the test."""
    (run_dir,) = private_directories(directory, "run")
    log = directory / "daemon.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*private_run(run_dir), *map(str, command)], stdin=subprocess.DEVNULL, stdout=output,
            stderr=subprocess.STDOUT, env=engine_environment(TMPDIR=directory), start_new_session=True,
        )  # fmt: skip
    try:
        wait_until_ready(name, process, ready, log)
        yield process
    finally:
        stop(process)
        assert_nothing_left(directory, name, [run_dir, *state])


def answers(command: list[str], environment: dict[str, str]) -> bool:
    """Whether ``command`` (a client asking a daemon) succeeds."""
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, env=environment, check=False)
    return result.returncode == 0


def wait_until_ready(name: str, process: subprocess.Popen, ready: Callable[[], bool], log: Path) -> None:
    """Poll ``ready()`` until it holds; fail the test with the end of the daemon's ``log`` if the daemon
    (``name``, ``process``) exits first or does not become ready within PATIENCE seconds."""
    deadline = time.monotonic() + PATIENCE
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"{name} exited {process.returncode} before it was ready:\n{log_tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{name} not ready after {PATIENCE} s:\n{log_tail(log)}")
        time.sleep(0.1)  # a polling interval; readiness itself is what ready() says


def log_tail(log: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of ``log``."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stop(process: subprocess.Popen) -> None:
    """Stop the daemon ``process`` by its PID: SIGTERM, SIGKILL after STOP_PATIENCE seconds."""
    process.terminate()
    try:
        process.wait(STOP_PATIENCE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def assert_nothing_left(directory: Path, engine: str, state: Sequence[Path]) -> None:
    """Kill and delete the containers (their runc state under ``state``) and the processes that ``engine`` (its
    files under ``directory``) left, then fail the test naming them, and any mount left under ``directory``."""
    containers = [container for states in state for container in delete_runc_containers(states)]
    processes = kill_processes_mentioning(directory)
    mounts = [point for point in mount_points() if point.is_relative_to(directory)]
    if containers or processes or mounts:
        pytest.fail(f"{engine} left containers {containers}, processes {processes} (all now killed), mounts {mounts}")


def delete_runc_containers(directory: Path) -> list[str]:
    """Kill and delete every container whose runc state lies under ``directory`` (runc keeps each in
    ROOT/ID/state.json); return their ids."""
    deleted = []
    for state in sorted(directory.glob("**/state.json")):
        root, container = state.parent.parent, state.parent.name
        listed = subprocess.run(["runc", "--root", root, "state", container], capture_output=True, check=False)
        if listed.returncode == 0:
            subprocess.run(["runc", "--root", root, "delete", "--force", container], capture_output=True, check=False)
            deleted.append(container)
    return deleted


def kill_processes_mentioning(directory: Path) -> list[str]:
    """SIGKILL every process whose command line mentions ``directory`` (a daemon's shims and helpers), by PID,
    and wait until they are gone; return their command lines."""
    killed = {}
    for pid, command_line in processes():
        if str(directory) in command_line and pid != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed[pid] = command_line
    deadline = time.monotonic() + PATIENCE
    while any(alive(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.05)
    return list(killed.values())


def processes() -> Iterator[tuple[int, str]]:
    """``(pid, command line)`` of every process that has not ended (zombies have no command line)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if command_line:
                    yield int(entry.name), command_line


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, ended but not yet reaped, does not)."""
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


def mount_points() -> list[Path]:
    """The mount points of this process's mount namespace (the host's)."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [Path(line.split()[4].encode().decode("unicode_escape")) for line in lines]


@pytest.fixture
def podman_engine(tmp_path: Path) -> Iterator[Podman]:
    """podman with private state for one test."""
    with Podman(tmp_path / "podman") as engine:
        yield engine


@pytest.fixture
def buildah_engine(tmp_path: Path) -> Iterator[Buildah]:
    """buildah with private state for one test."""
    with Buildah(tmp_path / "buildah") as engine:
        yield engine


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    """One dockerd with private state for the session."""
    with docker_engine(tmp_path_factory.mktemp("dockerd")) as engine:
        yield engine


@pytest.fixture(scope="session")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    """One containerd with private state for the session."""
    with containerd_daemon(tmp_path_factory.mktemp("containerd")) as engine:
        yield engine


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry of its own for one test: what it uploads is measured from an empty storage."""
    with docker_registry(tmp_path / "registry") as running:
        yield running

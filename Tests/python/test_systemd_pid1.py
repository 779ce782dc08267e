"""The shipped units under a real systemd 252 as PID 1 (issue #19, "a real systemd in the test suite").

systemd boots in a private PID + mount namespace (docs: /work/shared/PLATFORM-NOTES.md, "systemd"):
tmpfs on /tmp, /var/tmp and /run, and overlays (upper layers on that /run tmpfs) on /etc and /var/lib,
so systemd-sysusers, systemd-tmpfiles, StateDirectory= and the models written for the test change
nothing of the machine; a minimal test.target with DefaultDependencies=no is the only unit started at
boot (never the default boot, which would empty the machine's /tmp and start udev and logind). The
namespace's init joins a cgroup of its own (srppo-test-…) in every hierarchy it can, so it never
shares one with another test; both die with a SIGKILL to systemd and are removed afterwards.

The units are systemd/srppod.service, srppod.socket and srppod-images.socket as shipped, with the path
of the binary substituted. Drop-ins add only what a test observes through (standard output to a file,
a probe that runs inside the sandbox before the daemon) and, for the watchdog test, a watchdog interval
of seconds instead of the shipped 120 s. systemd is reached with `nsenter -t PID -m -p systemctl`;
the sockets from outside through /proc/PID/root.

Root only (unshare, nsenter, mounts); CI runs as root, and a skip there fails (conftest.py).
"""
import json
import os
import pathlib
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import numpy as np
import pytest
from srppo_client import Client

from srppod_harness import ROOT, call, reward_in_process, score_while, srppod_bin
from test_daemon_serving import random_items, same
from tiny_model import write_tiny_llama

SYSTEMD = "/lib/systemd/systemd"
UNITS = ["srppod.service", "srppod.socket", "srppod-images.socket"]
HTTP = "/run/srppod/http.sock"
IMAGES = "/run/srppod/images.sock"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a systemd as PID 1 in its own namespaces")

BOOT = """#!/bin/sh
# Runs as PID 1's parent inside `unshare --pid --fork --mount --mount-proc`; nothing here reaches the
# machine's mount table. STATE is the test's folder (outside /tmp and /run, so still visible here).
set -eu
STATE="$1"
mount --make-rprivate /
for d in /tmp /var/tmp; do mount -t tmpfs -o mode=1777 tmpfs "$d"; done
mount -t tmpfs -o mode=755 tmpfs /run   # as on a real system
# /etc and /var/lib: what sysusers, tmpfiles, StateDirectory= and the test write stays in /run.
for d in etc var-lib; do mkdir -p "/run/srppo-test/$d/upper" "/run/srppo-test/$d/work"; done
mount -t overlay overlay -o lowerdir=/etc,upperdir=/run/srppo-test/etc/upper,workdir=/run/srppo-test/etc/work /etc
mount -t overlay overlay -o lowerdir=/var/lib,upperdir=/run/srppo-test/var-lib/upper,workdir=/run/srppo-test/var-lib/work /var/lib
mkdir -p /run/systemd/system /run/srppod-test /etc/srppod /etc/sysusers.d /etc/tmpfiles.d
cp -r "$STATE"/units/. /run/systemd/system/
cp "$STATE"/srppod.env /etc/srppod/srppod.env
cp "$STATE"/sysusers.conf /etc/sysusers.d/srppod.conf
cp "$STATE"/tmpfiles.conf /etc/tmpfiles.d/srppod.conf
printf '[Unit]\\nDescription=srppo test target\\nDefaultDependencies=no\\n' > /run/systemd/system/test.target
# systemd in a container logs to /dev/console: here a pipe into a file in this /run, not the machine's
# console (the test reads it through /proc/PID/root). The reader holds the pipe open for writing too,
# so it never sees end-of-file.
mkfifo /run/srppo-test/console
sh -c 'exec 3<>/run/srppo-test/console; exec cat <&3 >> /run/srppo-test/console.log' &
mount --bind /run/srppo-test/console /dev/console
export container=srppo-test
exec %s --system --unit=test.target --log-target=console --log-level=info
""" % SYSTEMD

# Runs inside the service's sandbox (ExecStartPre=, as User=srppod) and records what it may do.
PROBE = """#!/bin/sh
out=/var/lib/srppod/probe.txt
: > "$out"
try_write() { if msg=$(touch "$1" 2>&1); then echo "write $1: ok"; rm -f "$1"; else echo "write $1: ${msg##*: }"; fi >> "$out"; }
try_write /var/lib/srppod/probe-file
try_write /etc/srppod-probe
try_write /usr/srppod-probe
try_write /var/lib/srppod-probe
try_write "$STATE_DIR/srppod-probe"
try_write /run/srppod-probe
if msg=$(ls /home 2>&1); then echo "list /home: ok" >> "$out"; else echo "list /home: ${msg##*: }" >> "$out"; fi
echo "id: $(id -un):$(id -gn) $(id -u)" >> "$out"
echo "interfaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' ')" >> "$out"
echo "devices: $(ls /dev | sort | tr '\\n' ' ')" >> "$out"
grep -E '^(NoNewPrivs|Seccomp|CapEff|CapBnd|CapPrm|CapAmb):' /proc/self/status | tr -d '\\t' | sed 's/:/: /' >> "$out"
"""


def wait_until(predicate, timeout, what, interval=0.05):
    """Polls `predicate` until it returns a true value (returned) or `timeout` seconds pass (fails)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Pid1:
    """A systemd as PID 1 of a private PID + mount namespace, with the shipped units installed."""

    def __init__(self, state):
        self.state = pathlib.Path(state)
        self.pid = None
        self.unshare = None
        self.cgroups = []

    # -- Set-up -------------------------------------------------------------------------------------

    def prepare(self, env, dropins=None):
        """Writes the units as shipped (binary path substituted), the sysusers/tmpfiles snippets, the
        environment file and the test's drop-ins into the state folder, for boot.sh to copy."""
        shipped = ROOT / "systemd"
        units = self.state / "units"
        units.mkdir(parents=True)
        binary = self.state / "bin" / "srppod"
        binary.parent.mkdir()
        shutil.copy2(srppod_bin(), binary)
        for name in UNITS:
            text = (shipped / name).read_text()
            if name == "srppod.service":
                assert "ExecStart=/usr/local/bin/srppod " in text
                text = text.replace("/usr/local/bin/srppod", str(binary))
            (units / name).write_text(text)
        shutil.copy(shipped / "sysusers.d" / "srppod.conf", self.state / "sysusers.conf")
        shutil.copy(shipped / "tmpfiles.d" / "srppod.conf", self.state / "tmpfiles.conf")
        # What the test reads: the daemon's JSON events and log lines (no journald in the namespace).
        observe = "[Service]\nStandardOutput=append:/run/srppod-test/srppod.log\nStandardError=inherit\n"
        dropin = units / "srppod.service.d"
        dropin.mkdir()
        (dropin / "10-test-output.conf").write_text(observe)
        for name, text in (dropins or {}).items():
            (dropin / name).write_text(text)
        # OpenBLAS settings reach the daemon as they reach the in-process reference.
        blas = "".join(f"{k}={v}\n" for k, v in os.environ.items() if k.startswith("OPENBLAS_"))
        (self.state / "srppod.env").write_text(env + blas)
        (self.state / "boot.sh").write_text(BOOT)
        (self.state / "boot.sh").chmod(0o755)

    def _join_own_cgroups(self):
        """Runs in the child before exec: a fresh cgroup in each hierarchy, so that systemd's
        init.scope, system.slice, ... are created under it, apart from any other test."""
        name = self.state.name
        for line in open("/proc/self/cgroup"):
            _, controllers, path = line.rstrip("\n").split(":", 2)
            mount = "unified" if controllers == "" else controllers.replace("name=", "")
            base = pathlib.Path("/sys/fs/cgroup") / mount
            if controllers == "" and not base.exists():
                base = pathlib.Path("/sys/fs/cgroup")
            if not base.is_dir() or "cpuset" in controllers:
                continue
            folder = base / path.lstrip("/") / name
            try:
                folder.mkdir()
                (folder / "cgroup.procs").write_text(str(os.getpid()))
            except OSError:
                continue

    def boot(self, timeout=60):
        console = open(self.state / "boot.log", "w")
        self.unshare = subprocess.Popen(["unshare", "--pid", "--fork", "--mount", "--mount-proc",
                                         str(self.state / "boot.sh"), str(self.state)],
                                        stdout=console, stderr=subprocess.STDOUT, preexec_fn=self._join_own_cgroups,
                                        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        console.close()

        def systemd_pid():
            if self.unshare.poll() is not None:
                raise AssertionError(f"unshare exited {self.unshare.returncode}: {(self.state / 'boot.log').read_text()[-3000:]}")
            children = pathlib.Path(f"/proc/{self.unshare.pid}/task/{self.unshare.pid}/children").read_text().split()
            for child in children:
                try:
                    if pathlib.Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                        return int(child)
                except FileNotFoundError:
                    pass
            return None
        self.pid = wait_until(systemd_pid, timeout, "systemd to start in the namespace")
        self.cgroups = self._own_cgroups()
        wait_until(lambda: self.ctl("is-system-running", check=False).stdout.strip() in ("running", "degraded"),
                   timeout, "systemctl is-system-running to say running", interval=0.1)
        state = self.ctl("is-system-running", check=False).stdout.strip()
        assert state == "running", (state, self.ctl("--failed", "--no-pager", check=False).stdout)

    def _own_cgroups(self):
        found = []
        for root, dirs, _ in os.walk("/sys/fs/cgroup"):
            if os.path.basename(root) == self.state.name:
                found.append(root)
                dirs[:] = []
            elif root.count("/") > 6:
                dirs[:] = []
        return found

    def kill(self):
        """SIGKILL to PID 1 ends the namespace and every process in it; then the cgroups go."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.unshare:
            try:
                self.unshare.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.unshare.kill()
                self.unshare.wait(timeout=30)
        for folder in self.cgroups or self._own_cgroups():
            deadline = time.monotonic() + 10
            while os.path.exists(folder):
                try:
                    for root, dirs, _ in os.walk(folder, topdown=False):
                        os.rmdir(root)
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)

    # -- Reaching into the namespace ------------------------------------------------------------------

    def run(self, *command, check=True, timeout=60, input=None):
        result = subprocess.run(["nsenter", "-t", str(self.pid), "-m", "-p", *command], capture_output=True, text=True,
                                timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"{command} exited {result.returncode}: {result.stdout}{result.stderr}\n"
                                 f"systemd: {self.console()[-3000:]}\nsrppod: {self.log()[-3000:]}")
        return result

    def ctl(self, *args, check=True, timeout=60):
        return self.run("systemctl", *args, check=check, timeout=timeout)

    def show(self, unit, *properties):
        out = self.ctl("show", unit, *[f"--property={p}" for p in properties]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def path(self, inside):
        """The namespace's file `inside`, as seen from outside it."""
        return f"/proc/{self.pid}/root{inside}"

    def read(self, inside):
        return pathlib.Path(self.path(inside)).read_text()

    def console(self):
        """What systemd logged."""
        try:
            return self.read("/run/srppo-test/console.log")
        except (FileNotFoundError, TypeError):
            return ""

    def log(self):
        try:
            return self.read("/run/srppod-test/srppod.log")
        except (FileNotFoundError, TypeError):
            return ""

    def events(self, name):
        found = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == name:
                    found.append(event)
        return found

    # -- The installation steps of the unit's header ---------------------------------------------------

    def install(self, models, sft):
        """systemd-sysusers and systemd-tmpfiles --create with the shipped snippets, then the models into
        /var/lib/srppod/models (sft-current names `sft`), then the two sockets started."""
        self.run("systemd-sysusers", "/etc/sysusers.d/srppod.conf")
        self.run("systemd-tmpfiles", "--create", "/etc/tmpfiles.d/srppod.conf")
        self.run("cp", "-r", "--no-preserve=ownership", f"{models}/.", "/var/lib/srppod/models/")
        self.run("ln", "-sfn", sft, "/var/lib/srppod/models/sft-current")
        self.run("chown", "-R", "-h", "srppod:srppod", "/var/lib/srppod/models")
        self.ctl("start", "srppod.socket", "srppod-images.socket")
        wait_until(lambda: os.path.exists(self.path(IMAGES)), 30, "the image socket")

    def switch_sft(self, target):
        self.run("ln", "-sfn", target, "/var/lib/srppod/models/sft-current.new")
        self.run("mv", "-T", "/var/lib/srppod/models/sft-current.new", "/var/lib/srppod/models/sft-current")

    def main_pid(self):
        return int(self.show("srppod.service", "MainPID")["MainPID"])

    def wait_serving(self, timeout=120, old_pid=None):
        """Until srppod.service is active (READY=1 seen by systemd) with a main pid other than `old_pid`,
        and its HTTP socket answers ready. Returns the main pid."""
        def serving():
            props = self.show("srppod.service", "ActiveState", "SubState", "MainPID")
            if props["ActiveState"] == "failed":
                raise AssertionError(f"srppod.service failed: {self.console()[-3000:]}\n{self.log()[-3000:]}")
            pid = int(props["MainPID"])
            if props["ActiveState"] != "active" or pid == 0 or pid == old_pid:
                return None
            return pid
        pid = wait_until(serving, timeout, "srppod.service to become active", interval=0.1)
        status, _, body = call(self.path(HTTP), "GET", "/v1/ready", timeout=30)
        assert (status, body["ready"], body["state"]) == (200, True, "serving")
        return pid

    def ready_seconds(self):
        """From the main process's start to READY=1, by systemd's own monotonic timestamps."""
        props = self.show("srppod.service", "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic")
        return (int(props["ActiveEnterTimestampMonotonic"]) - int(props["ExecMainStartTimestampMonotonic"])) / 1e6

    def models(self):
        status, _, body = call(self.path(HTTP), "GET", "/v1/models", timeout=30)
        assert status == 200, body
        return {m["role"]: m for m in body["models"]}


@pytest.fixture
def pid1():
    state = pathlib.Path(tempfile.mkdtemp(prefix="srppo-test-", dir="/var/lib"))
    state.chmod(0o755)   # srppod (User=) reads the binary and the probe under it
    manager = Pid1(state)
    try:
        yield manager
    finally:
        try:
            manager.kill()
        finally:
            if os.environ.get("SRPPO_KEEP_PID1_STATE"):
                print(f"\nkept {state}")
            else:
                shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def tiny(pid1):
    models = pid1.state / "models"
    write_tiny_llama(models / "pt", seed=0)
    write_tiny_llama(models / "sft-a", seed=1)
    write_tiny_llama(models / "sft-b", seed=2)
    return models


ENV = ("SRPPOD_PT=/var/lib/srppod/models/pt\n"
       "SRPPOD_SFT=/var/lib/srppod/models/sft-current\n"
       "SRPPOD_OPTIONS=\n")


def passwd_entry(pid1, name, database="passwd"):
    for line in pid1.read(f"/etc/{database}").splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields
    raise AssertionError(f"no {name} in the namespace's /etc/{database}")


def connect_as(pid1, uid, gid, groups):
    """Connects to the HTTP socket inside the namespace as uid/gid with the supplementary `groups`;
    returns "ok" or the error's name."""
    script = ("import socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
              f"try:\n    s.connect({HTTP!r}); print('ok')\nexcept OSError as e:\n    print(type(e).__name__)\n")
    group_args = ["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"]
    return pid1.run("setpriv", f"--reuid={uid}", f"--regid={gid}", *group_args, "/usr/bin/python3", "-c", script).stdout.strip()


def test_shipped_units_install_activate_and_run_hardened(pid1, tiny, srppo_bin):
    """sysusers/tmpfiles create the account, the clients' group and the folders; both sockets listen
    with mode 0660 root:srppo; a non-member is refused, a member's connection starts srppod.service
    (socket activation), which reaches READY=1 (Type=notify) as User=srppod with the sandbox in force,
    checked from inside (a probe in ExecStartPre=) and on the main process (/proc status, mountinfo,
    namespaces)."""
    probe = pid1.state / "bin" / "probe.sh"
    pid1.prepare(ENV, dropins={"20-test-probe.conf": f"[Service]\nEnvironment=STATE_DIR={pid1.state}\nExecStartPre={probe}\n"})
    probe.write_text(PROBE)
    probe.chmod(0o755)
    pid1.boot()
    pid1.install(tiny, "sft-a")

    # systemd-sysusers: a system account with the shipped home and no login; the clients' group.
    user = passwd_entry(pid1, "srppod")
    uid, gid = int(user[2]), int(user[3])
    assert 0 < uid < 1000 and user[5] == "/var/lib/srppod" and user[6].endswith("nologin")
    assert passwd_entry(pid1, "srppod", "group")[2] == str(gid)
    srppo_gid = int(passwd_entry(pid1, "srppo", "group")[2])
    assert 0 < srppo_gid < 1000 and srppo_gid != gid
    # The machine's own /etc is untouched.
    assert "srppod:" not in pathlib.Path("/etc/passwd").read_text()
    # systemd-tmpfiles: both folders 0750 srppod:srppod.
    for folder in ["/var/lib/srppod", "/var/lib/srppod/models"]:
        st = os.stat(pid1.path(folder))
        assert (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) == (oct(0o750), uid, gid), folder
    assert not os.path.exists("/var/lib/srppod")

    # The sockets: 0660 root:srppo in a 0755 folder; the service is not running before a connection.
    for path in [HTTP, IMAGES]:
        st = os.stat(pid1.path(path))
        assert (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) == (oct(0o660), 0, srppo_gid), path
    st = os.stat(pid1.path("/run/srppod"))
    assert (oct(st.st_mode & 0o7777), st.st_uid) == (oct(0o755), 0)
    for unit in ["srppod.socket", "srppod-images.socket"]:
        assert pid1.show(unit, "ActiveState", "SubState") == {"ActiveState": "active", "SubState": "listening"}
    assert pid1.show("srppod.service", "ActiveState")["ActiveState"] == "inactive"

    # Not in srppo: refused by the socket's mode, and nothing is started.
    assert connect_as(pid1, 65534, 65534, []) == "PermissionError"
    time.sleep(0.5)
    assert pid1.show("srppod.service", "ActiveState")["ActiveState"] == "inactive"
    # A member of srppo connects; that first connection starts the service.
    assert connect_as(pid1, 65534, 65534, [srppo_gid]) == "ok"
    main = pid1.wait_serving()
    props = pid1.show("srppod.service", "Type", "NotifyAccess", "StatusText", "User", "WatchdogUSec", "Result")
    assert props["Type"] == "notify" and props["NotifyAccess"] == "main" and props["User"] == "srppod"
    assert props["StatusText"].startswith("Serving PT")
    assert props["WatchdogUSec"] == "2min"
    ready = pid1.events("ready")
    assert len(ready) == 1 and ready[0]["pid"] == main
    assert [m["loaded_from"] for m in ready[0]["models"]] == ["file", "file"]
    listening = pid1.events("listening")
    assert listening[0]["sockets"] == {"http": "systemd:http", "images": "systemd:images"}

    # It scores: the answers equal the in-process reference (same checkpoints).
    items = random_items(12, seed=3)
    status, _, body = call(pid1.path(HTTP), "POST", "/v1/score", {"items": items, "client": "first"})
    assert status == 200, body
    reference = reward_in_process(srppo_bin, tiny / "pt", tiny / "sft-a", items, pid1.state)
    assert all(same(got, want) for got, want in zip(body["results"], reference))
    # The image socket hands the sandboxed daemon's SFT image to a client by descriptor (SCM_RIGHTS out
    # of its namespaces): it re-hashes to its manifest and scores exactly as the HTTP answers did.
    attached = subprocess.run([srppo_bin, "image", "attach", "--socket", pid1.path(IMAGES), "--name", "sft", "--verify",
                               "--score"], input="".join(json.dumps(item) + "\n" for item in items), capture_output=True,
                              text=True, timeout=60)
    assert attached.returncode == 0, attached.stderr
    lines = [json.loads(line) for line in attached.stdout.splitlines()]
    assert [np.float32(line["logprobs"]).tolist() for line in lines] == [np.float32(r["sft_logprobs"]).tolist()
                                                                       for r in body["results"]]

    # The main process: user, capabilities, no_new_privs, seccomp, its own namespaces.
    status_text = pid1.run("cat", f"/proc/{main}/status").stdout
    fields = dict(re.split(r":\s*", line, maxsplit=1) for line in status_text.splitlines() if ":" in line)
    assert fields["Uid"].split() == [str(uid)] * 4 and fields["Gid"].split() == [str(gid)] * 4
    assert int(fields["CapEff"], 16) == int(fields["CapPrm"], 16) == int(fields["CapBnd"], 16) == 0
    assert int(fields["CapAmb"], 16) == 0
    assert fields["NoNewPrivs"] == "1" and fields["Seccomp"] == "2"
    for ns in ["net", "ipc", "uts", "mnt"]:
        mine = pid1.run("readlink", f"/proc/1/ns/{ns}").stdout.strip()
        theirs = pid1.run("readlink", f"/proc/{main}/ns/{ns}").stdout.strip()
        assert mine != theirs, f"srppod shares PID 1's {ns} namespace"
    mounts = {}
    for line in pid1.run("cat", f"/proc/{main}/mountinfo").stdout.splitlines():
        parts = line.split()
        mounts[parts[4]] = parts[5].split(",")   # the last mount on a path wins
    assert "ro" in mounts["/"], mounts["/"]                          # ProtectSystem=strict
    assert "ro" in mounts["/run"], mounts["/run"]                    # ReadOnlyPaths=/run (see the unit)
    assert "rw" in mounts["/var/lib/srppod"]                         # StateDirectory=
    assert "ro" in mounts["/proc/sys"] and "ro" in mounts["/sys"]    # ProtectKernelTunables=
    assert "/home" in mounts and "/root" in mounts                   # ProtectHome=yes
    assert "/dev" in mounts and "/tmp" in mounts                     # PrivateDevices=, PrivateTmp=

    # From inside the sandbox (ExecStartPre= ran as srppod with the same settings).
    probe_lines = dict(line.split(": ", 1) for line in pid1.read("/var/lib/srppod/probe.txt").splitlines())
    print("\nprobe inside the sandbox:\n" + "\n".join(f"  {k}: {v}" for k, v in probe_lines.items()))
    assert probe_lines["write /var/lib/srppod/probe-file"] == "ok"
    for outside in ["/etc/srppod-probe", "/usr/srppod-probe", "/var/lib/srppod-probe", f"{pid1.state}/srppod-probe",
                    "/run/srppod-probe"]:
        assert probe_lines[f"write {outside}"] == "Read-only file system", outside
    assert probe_lines["list /home"] == "Permission denied"
    assert probe_lines["id"] == f"srppod:srppod {uid}"
    assert probe_lines["interfaces"].split() == ["lo"]                # PrivateNetwork=
    # IPAddressDeny= is in force (systemd says so in its log when the kernel cannot apply the BPF filter).
    assert set(pid1.show("srppod.service", "IPAddressDeny")["IPAddressDeny"].split()) == {"0.0.0.0/0", "::/0"}
    assert "BPF firewalling not supported" not in pid1.console()
    devices = probe_lines["devices"].split()
    assert "null" in devices and "vda" not in devices and not any(d.startswith(("sd", "nvme")) for d in devices)
    assert probe_lines["NoNewPrivs"] == "1" and probe_lines["Seccomp"] == "2"
    assert int(probe_lines["CapEff"], 16) == int(probe_lines["CapBnd"], 16) == 0


def test_systemctl_reload_under_load_serves_the_new_revision(pid1, tiny, srppo_bin):
    """`systemctl reload srppod` (ExecReload= sends SIGHUP) while eight clients score without retries:
    0 failed requests; every answer is revision 1 or revision 2 of SFT and equals that revision's
    in-process reference; the last answers are revision 2; the main process stays the same."""
    pid1.prepare(ENV)
    pid1.boot()
    pid1.install(tiny, "sft-a")
    assert call(pid1.path(HTTP), "GET", "/v1/health")[0] == 200      # first connection: activation
    main = pid1.wait_serving()
    items = [{"prompt_ids": [1, 3 + i % 40, 4], "response_ids": [5 + i % 30, 6, 2 if i % 2 else 7]} for i in range(40)]
    references = {1: reward_in_process(srppo_bin, tiny / "pt", tiny / "sft-a", items, pid1.state),
                  2: reward_in_process(srppo_bin, tiny / "pt", tiny / "sft-b", items, pid1.state)}
    old_sha = pid1.models()["sft"]["identity"]["sha256"]

    def reload():
        pid1.switch_sft("sft-b")
        pid1.ctl("reload", "srppod.service")
        wait_until(lambda: call(pid1.path(HTTP), "GET", "/v1/ready")[2].get("models", {}).get("sft", {}).get("revision") == 2,
                   60, "revision 2 of SFT to be served")
    answers, failures = score_while(pid1.path(HTTP), items, reload)
    assert failures == [], failures[:5]
    revisions = [body["models"]["sft"]["revision"] for _, _, body in answers]
    assert set(revisions) == {1, 2}
    assert revisions[-1] == 2
    for index, _, body in answers:
        assert same(body["results"][0], references[body["models"]["sft"]["revision"]][index])
    props = pid1.show("srppod.service", "ActiveState", "MainPID", "NRestarts", "StatusText")
    assert (props["ActiveState"], int(props["MainPID"]), props["NRestarts"]) == ("active", main, "0")
    sft = pid1.models()["sft"]
    assert sft["identity"]["revision"] == 2 and sft["identity"]["sha256"] != old_sha and sft["loaded_from"] == "file"
    print(f"\nsystemctl reload under load: {len(answers)} answers, 0 failures, "
          f"{revisions.count(1)} of revision 1 then {revisions.count(2)} of revision 2")


def long_batch_items(count, tokens, seed=9):
    rng = random.Random(seed)
    return [{"prompt_ids": [1] + [rng.randrange(100, 40000) for _ in range(tokens - 2)], "response_ids": [rng.randrange(100, 40000)]}
            for _ in range(count)]


def test_watchdog_restarts_a_hung_batch_and_the_images_come_from_the_fd_store(pid1, smollm2):
    """SmolLM2 under the shipped unit with WatchdogSec=3 (a drop-in; shipped: 120 s for real batches):
    one scoring batch of 8192 tokens runs far longer than the interval, srppod stops pinging, systemd's
    watchdog fires (SIGABRT), Restart=on-failure starts it again, and the new process maps the images
    kept in systemd's fd store. Its READY=1 comes sooner after exec than the cold start's (systemd's
    timestamps, same run), and it serves the same hashes and the same answers."""
    models = pid1.state / "models"
    models.mkdir()
    shutil.copy(smollm2, models / "smollm2.gguf")
    env = ("SRPPOD_PT=/var/lib/srppod/models/smollm2.gguf\nSRPPOD_SFT=/var/lib/srppod/models/sft-current\n"
           "SRPPOD_OPTIONS=--batch-tokens 8192\n")
    pid1.prepare(env, dropins={"20-test-watchdog.conf": "[Service]\nWatchdogSec=3\n"})
    pid1.boot()
    pid1.install(models, "smollm2.gguf")
    path = pid1.path(HTTP)
    assert call(path, "GET", "/v1/health")[0] == 200
    first = pid1.wait_serving()
    cold = pid1.ready_seconds()
    before = pid1.models()
    assert {m["loaded_from"] for m in before.values()} == {"file"}
    assert pid1.show("srppod.service", "WatchdogUSec")["WatchdogUSec"] == "3s"
    small = [{"prompt_ids": [1, 9690, 28, 2641, 314], "response_ids": [253, 1345, 30, 2]}]
    answer = call(path, "POST", "/v1/score", {"items": small})[2]
    # Pings go on while idle: well past the interval the service is still the same process.
    time.sleep(4)
    assert pid1.main_pid() == first

    hung = {}

    def long_request():
        started = time.monotonic()
        try:
            hung["status"] = call(path, "POST", "/v1/score", {"items": long_batch_items(64, 128), "client": "long"}, timeout=300)[0]
        except OSError as error:
            hung["error"] = repr(error)
        hung["seconds"] = time.monotonic() - started
    worker = threading.Thread(target=long_request)
    worker.start()
    # systemd's view, polled: the watchdog's stop (SubState stop-watchdog, Result=watchdog), the wait of
    # RestartSec= (auto-restart), the new start; until the service is active with a new main pid.
    seen = []

    def restarted():
        props = pid1.show("srppod.service", "ActiveState", "SubState", "Result", "MainPID")
        if not seen or seen[-1] != (props["SubState"], props["Result"]):
            seen.append((props["SubState"], props["Result"]))
        return props["ActiveState"] == "active" and int(props["MainPID"]) not in (0, first)
    wait_until(restarted, 120, "systemd to restart srppod", interval=0.02)
    second = pid1.wait_serving(timeout=60, old_pid=first)
    worker.join(timeout=120)
    warm = pid1.ready_seconds()
    print(f"\nsrppod.service states (SubState, Result) while the batch ran: {seen}")
    assert ("stop-watchdog", "watchdog") in seen and ("auto-restart", "watchdog") in seen, seen
    # The SIGABRT itself ended the process (the unit turns the Swift backtracer off, which would have
    # kept it running until TimeoutAbortSec='s SIGKILL).
    assert ("stop-sigkill", "watchdog") not in seen, seen
    assert "error" in hung, f"the long batch was answered ({hung}): it did not outlast the watchdog"
    props = pid1.show("srppod.service", "NRestarts", "ActiveState")
    assert props == {"NRestarts": "1", "ActiveState": "active"}
    assert any("longer than the watchdog interval" in line for line in pid1.log().splitlines())

    after = pid1.models()
    assert {m["loaded_from"] for m in after.values()} == {"fd-store"}
    assert {r: m["identity"]["sha256"] for r, m in after.items()} == {r: m["identity"]["sha256"] for r, m in before.items()}
    again = call(path, "POST", "/v1/score", {"items": small})[2]
    assert again["results"] == answer["results"]
    events = pid1.events("ready")
    assert [e["pid"] for e in events] == [first, second]
    print(f"\nwatchdog: batch of 8192 tokens cut after {hung['seconds']:.1f} s; READY=1 after exec: cold {cold:.3f} s "
          f"(daemon: {events[0]['startup_seconds']:.3f} s), after the watchdog restart from the fd store {warm:.3f} s "
          f"(daemon: {events[1]['startup_seconds']:.3f} s), {cold / warm:.1f}× faster")
    assert warm < cold / 2, (warm, cold)


def test_restart_and_kill_9_under_load_lose_nothing(pid1, tiny, srppo_bin):
    """Eight retrying clients (srppo_client, request ids) score while `systemctl restart srppod` and
    then `kill -9` of the main pid happen: no client error, every request id answered exactly once
    with its own id, every answer equal to the in-process reference; systemd restarts the killed
    daemon by itself (NRestarts=1) and both new processes map the images from the fd store."""
    pid1.prepare(ENV)
    pid1.boot()
    pid1.install(tiny, "sft-a")
    path = pid1.path(HTTP)
    pool = random_items(200, seed=21)
    reference = reward_in_process(srppo_bin, tiny / "pt", tiny / "sft-a", pool, pid1.state)
    assert call(path, "GET", "/v1/health")[0] == 200
    first = pid1.wait_serving()
    hashes = {r: m["identity"]["sha256"] for r, m in pid1.models().items()}

    answers, errors, issued = {}, [], []
    lock = threading.Lock()
    stop = threading.Event()

    def client(number):
        with Client(path, f"restart-{number}", retry_budget=60, timeout=60) as c:
            k = 0
            while not stop.is_set():
                request_id = f"r{number}-{k}"
                index = (number * 37 + k) % len(pool)
                with lock:
                    issued.append(request_id)
                try:
                    answer = c.score([pool[index]], request_id=request_id)
                except Exception as error:
                    with lock:
                        errors.append(f"{request_id}: {error!r}")
                else:
                    with lock:
                        answers.setdefault(request_id, []).append((index, answer))
                k += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(answers) >= 300, 60, "300 answers")
        restarted_at = time.monotonic()
        pid1.ctl("restart", "srppod.service")
        second = pid1.wait_serving(old_pid=first)
        restart_seconds = time.monotonic() - restarted_at
        after_restart = pid1.models()
        count = len(answers)
        wait_until(lambda: len(answers) >= count + 300, 60, "300 answers after the restart")
        killed_at = time.monotonic()
        pid1.run("kill", "-9", str(second))
        third = pid1.wait_serving(old_pid=second)
        kill_seconds = time.monotonic() - killed_at
        after_kill = pid1.models()
        count = len(answers)
        wait_until(lambda: len(answers) >= count + 300, 60, "300 answers after kill -9")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    assert errors == [], errors[:5]
    assert sorted(answers) == sorted(issued)
    assert all(len(got) == 1 for got in answers.values()), "a request id answered twice"
    for request_id, [(index, answer)] in answers.items():
        assert answer["id"] == request_id
        assert same(answer["results"][0], reference[index]), request_id
    for models in [after_restart, after_kill]:
        assert {m["loaded_from"] for m in models.values()} == {"fd-store"}
        assert {r: m["identity"]["sha256"] for r, m in models.items()} == hashes
    props = pid1.show("srppod.service", "NRestarts", "ActiveState", "MainPID")
    assert props == {"NRestarts": "1", "ActiveState": "active", "MainPID": str(third)}
    assert len({first, second, third}) == 3
    print(f"\nrestart and kill -9 under load: {len(answers)} requests of 8 retrying clients, 0 errors, 0 lost, "
          f"0 duplicated, all equal to the reference; systemctl restart to serving {restart_seconds:.2f} s, "
          f"kill -9 to serving {kill_seconds:.2f} s (RestartSec=1)")

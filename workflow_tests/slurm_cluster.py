"""A private single-node SLURM cluster (munged, slurmctld, slurmd) in a scratch directory.

The tests of the SLURM profile use it, and so can a user who wants to try `--profile profiles/slurm`
on one machine::

    sudo .venv/bin/python workflow_tests/slurm_cluster.py /tmp/slurm   # prints SLURM_CONF, Ctrl-C stops
    SLURM_CONF=/tmp/slurm/slurm.conf .venv/bin/snakemake --profile profiles/slurm preprocess

Everything lives under the scratch directory: munge key, socket and log, slurm.conf, state and
spool directories, daemon logs. The daemons listen on free ports on 127.0.0.1 and use their own
munge socket, so a system SLURM or munge on the same machine is neither used nor disturbed. There
is no accounting (no slurmdbd, `AccountingStorageType=accounting_storage/none`), as on many small
clusters; job states come from `squeue`, which keeps finished jobs for `MinJobAge` seconds.

Needs root (slurmd starts jobs as their user) and Debian's `slurm-wlm` and `munge` packages
(`apt-get install slurm-wlm munge`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
# Where SLURM clients look when SLURM_CONF is unset (Debian's build). The SLURM plugin's jobstep
# executor removes SLURM_CONF (with every other SLURM_* variable but the job's IDs) before its
# nested `srun`, so inside a job only this path finds the cluster, as on a real site; the cluster
# links it to its own slurm.conf while it runs, and only where no system SLURM is configured.
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
CLIENTS = ("sbatch", "squeue", "sinfo", "scancel", "srun", "scontrol")


def missing_requirements() -> str | None:
    """Why a private cluster cannot be started here (None when it can)."""
    missing = [name for name in DAEMONS + CLIENTS if _which(name) is None]
    if missing:
        return (
            f"SLURM/munge binaries not found: {', '.join(missing)} "
            "(install Debian's slurm-wlm and munge: apt-get install slurm-wlm munge)"
        )
    if os.geteuid() != 0:
        return "a private SLURM cluster needs root (slurmd starts jobs as their submitting user)"
    if SYSTEM_CONF.exists() and not SYSTEM_CONF.is_symlink():
        return f"{SYSTEM_CONF} exists: this machine has a SLURM of its own, which jobs would use"
    return None


def daemons_using(conf: Path) -> list[int]:
    """PIDs of running slurmctld/slurmd processes started with `-f conf` (read from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # the process ended, or is not ours to read
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if not args or Path(args[0]).name not in ("slurmctld", "slurmd"):
            continue
        if any(a == "-f" and b == str(conf) for a, b in zip(args, args[1:])):
            pids.append(int(entry.name))
    return sorted(pids)


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("MemTotal not found in /proc/meminfo")


class SlurmCluster:
    """One node, one default partition, no accounting; a context manager that always tears down.

    ``cpus`` defaults to the machine's CPU count and ``memory_mb`` to 90% of its memory; jobs that
    ask for more are refused by slurmctld, as on a real cluster.
    """

    def __init__(
        self,
        root: Path,
        *,
        cpus: int | None = None,
        memory_mb: int | None = None,
        partition: str = "debug",
        cluster_name: str = "mrixai",
    ):
        self.root = Path(root).resolve()
        self.cpus = int(cpus or os.cpu_count() or 1)
        self.memory_mb = int(memory_mb or _memory_mb() * 0.9)
        if self.cpus < 1 or self.memory_mb < 100:
            raise ValueError(f"need at least 1 CPU and 100 MB, got cpus={self.cpus} memory_mb={self.memory_mb}")
        self.partition = partition
        self.cluster_name = cluster_name
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self._procs: dict[str, subprocess.Popen] = {}

    # ----------------------------------------------------------------- environment
    @property
    def env(self) -> dict[str, str]:
        """The environment variables a client (sbatch, snakemake) needs to use this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def client_env(self) -> dict[str, str]:
        env = {**os.environ, **self.env}
        sbin = "/usr/sbin:/sbin"
        env["PATH"] = f"{env.get('PATH', '')}:{sbin}"
        return env

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a SLURM client command against this cluster."""
        return subprocess.run(cmd, env=self.client_env(), capture_output=True, text=True, check=check, timeout=timeout)

    # ----------------------------------------------------------------- bring-up
    def write_config(self) -> Path:
        for sub in ("munge", "state", "spool", "log", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
            os.chmod(self.root / sub, 0o700)
        os.chmod(self.root, 0o755)
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        (self.root / "plugstack.conf").write_text("")
        ctld_port, slurmd_port = _free_port(), _free_port()
        r = self.root
        self.conf.write_text(
            "\n".join(
                [
                    f"ClusterName={self.cluster_name}",
                    f"SlurmctldHost={self.node}(127.0.0.1)",
                    f"SlurmctldPort={ctld_port}",
                    f"SlurmdPort={slurmd_port}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    f"StateSaveLocation={r / 'state'}",
                    f"SlurmdSpoolDir={r / 'spool'}",
                    f"SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}",
                    f"SlurmdPidFile={r / 'run' / 'slurmd.pid'}",
                    f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
                    "SlurmctldDebug=info",
                    "SlurmdDebug=info",
                    f"PlugStackConfig={r / 'plugstack.conf'}",
                    f"TmpFS={r / 'spool'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_CPU_Memory",
                    "SchedulerType=sched/backfill",
                    "AccountingStorageType=accounting_storage/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "JobCompType=jobcomp/none",
                    "MpiDefault=none",
                    "SwitchType=switch/none",
                    "ReturnToService=2",
                    "SlurmdParameters=config_overrides",
                    # finished jobs stay visible to squeue (the status command without accounting)
                    # for an hour: the SLURM plugin needs MinJobAge > 3 x its first status delay
                    "MinJobAge=3600",
                    "KillWait=5",
                    "InactiveLimit=0",
                    "SlurmdTimeout=120",
                    f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} "
                    f"RealMemory={self.memory_mb} State=UNKNOWN",
                    f"PartitionName={self.partition} Nodes={self.node} Default=YES "
                    "MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        return self.conf

    def _link_system_conf(self) -> None:
        if SYSTEM_CONF.is_symlink():
            target = Path(os.readlink(SYSTEM_CONF))
            running = daemons_using(target)
            if running:
                raise RuntimeError(
                    f"{SYSTEM_CONF} links to {target}: another private cluster is running "
                    f"(pids {', '.join(map(str, running))})"
                )
            SYSTEM_CONF.unlink()  # left by a cluster whose daemons were killed (its files may remain)
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(self.conf)
        self._linked = True

    def _unlink_system_conf(self) -> None:
        if getattr(self, "_linked", False) and SYSTEM_CONF.is_symlink() and Path(os.readlink(SYSTEM_CONF)) == self.conf:
            SYSTEM_CONF.unlink()
        self._linked = False

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.root / "log" / f"{name}.stdout", "ab")
        self._procs[name] = subprocess.Popen(
            [_which(name) or name, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.client_env(),
            start_new_session=True,
        )
        log.close()

    def _check_alive(self, name: str) -> None:
        proc = self._procs[name]
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} during start-up:\n{self.logs(name)}")

    def start(self, timeout: float = 60) -> "SlurmCluster":
        """Start munged, slurmctld and slurmd; return once the node is idle in `sinfo`."""
        reason = missing_requirements()
        if reason:
            raise RuntimeError(reason)
        self.write_config()
        self._link_system_conf()
        m = self.root / "munge"
        self._spawn(
            "munged",
            "--foreground",
            "--force",
            f"--socket={self.munge_socket}",
            f"--key-file={m / 'munge.key'}",
            f"--pid-file={m / 'munged.pid'}",
            f"--log-file={self.root / 'log' / 'munged.log'}",
            f"--seed-file={m / 'munged.seed'}",
        )
        try:
            self._wait(lambda: self.munge_socket.exists(), timeout, "munged", "the munge socket")
            self._spawn("slurmctld", "-D", "-c", "-i", "-f", str(self.conf))
            self._wait(lambda: self.run("scontrol", "ping", check=False).returncode == 0, timeout, "slurmctld", "slurmctld to answer")
            self._spawn("slurmd", "-D", "-f", str(self.conf), "-N", self.node)
            self._wait(self._node_idle, timeout, "slurmd", f"node {self.node} idle in sinfo")
        except BaseException:
            self.stop()
            raise
        return self

    def _node_idle(self) -> bool:
        out = self.run("sinfo", "--noheader", "--Node", "--format=%N %t", check=False).stdout.split()
        return out[:2] == [self.node, "idle"]

    def _wait(self, ready, timeout: float, name: str, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(name)
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}:\n{self.logs(name)}")

    # ----------------------------------------------------------------- inspection
    def logs(self, *names: str) -> str:
        """The tails of the daemons' logs (all of them without names)."""
        out = []
        for path in sorted((self.root / "log").glob("*")):
            if not names or any(path.name.startswith(n) for n in names):
                out.append(f"--- {path}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(out)

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld knows (running and finished within MinJobAge): id, name, comment, state."""
        fields = ("id", "name", "comment", "state")
        out = self.run("squeue", "--noheader", "--states=all", "--format=%i|%j|%k|%T", check=True).stdout
        jobs = []
        for line in out.splitlines():
            if line.strip():
                jobs.append(dict(zip(fields, line.split("|"))))
        return jobs

    # ----------------------------------------------------------------- teardown
    def stop(self, timeout: float = 20) -> None:
        """Cancel every job of this cluster, then stop slurmd, slurmctld and munged (in that order)."""
        if "slurmctld" in self._procs and self._procs["slurmctld"].poll() is None:
            self.run("scancel", "--full", f"--partition={self.partition}", check=False)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                states = self.run("squeue", "--noheader", "--format=%T", check=False).stdout.split()
                if not any(s in ("RUNNING", "PENDING", "COMPLETING", "CONFIGURING") for s in states):
                    break
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self._procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        self._unlink_system_conf()

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # also when started in the background
    with SlurmCluster(Path(argv[0])) as cluster:
        print(f"SLURM is up: node {cluster.node}, partition {cluster.partition} (default)")
        print(f"export SLURM_CONF={cluster.conf}")
        print("Ctrl-C (or SIGTERM) cancels every job and stops the daemons.", flush=True)
        try:
            while True:
                signal.pause()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The private SLURM cluster's guard on /etc/slurm/slurm.conf, without SLURM: a link left by a
killed cluster (its scratch files still on disk) is replaced, one in use by live daemons is not."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import slurm_cluster
from slurm_cluster import SlurmCluster, daemons_using


@pytest.fixture
def fake_daemon(tmp_path):
    """A process whose command line reads `slurmd ... -f <conf>`, as a running cluster's slurmd."""
    conf = tmp_path / "old" / "slurm.conf"
    conf.parent.mkdir()
    conf.write_text("# a cluster's configuration\n")
    code = "import time; time.sleep(60)"
    proc = subprocess.Popen(["bash", "-c", f'exec -a slurmd {sys.executable} -c "{code}" -f {conf}'])
    deadline = time.monotonic() + 10
    while not daemons_using(conf) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield conf, proc
    proc.kill()
    proc.wait()


@pytest.fixture
def system_conf(tmp_path, monkeypatch):
    link = tmp_path / "etc" / "slurm" / "slurm.conf"
    monkeypatch.setattr(slurm_cluster, "SYSTEM_CONF", link)
    return link


def test_daemons_using_finds_only_the_process_started_with_that_conf(fake_daemon, tmp_path):
    conf, proc = fake_daemon
    assert daemons_using(conf) == [proc.pid]
    assert daemons_using(tmp_path / "other" / "slurm.conf") == []


def test_a_link_left_by_a_killed_cluster_is_replaced_even_when_its_files_remain(tmp_path, system_conf):
    old = tmp_path / "old" / "slurm.conf"
    old.parent.mkdir()
    old.write_text("# left behind\n")
    system_conf.parent.mkdir(parents=True)
    system_conf.symlink_to(old)
    cluster = SlurmCluster(tmp_path / "new")
    cluster._link_system_conf()
    assert system_conf.resolve() == cluster.conf.resolve()
    cluster._unlink_system_conf()
    assert not system_conf.is_symlink()


def test_a_link_in_use_by_running_daemons_is_refused_naming_them(fake_daemon, tmp_path, system_conf):
    conf, proc = fake_daemon
    system_conf.parent.mkdir(parents=True)
    system_conf.symlink_to(conf)
    cluster = SlurmCluster(tmp_path / "new")
    with pytest.raises(RuntimeError, match=rf"another private cluster is running \(pids {proc.pid}\)"):
        cluster._link_system_conf()
    assert system_conf.resolve() == conf.resolve()

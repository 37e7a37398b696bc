"""A real OpenSSH server on a loopback port, for the remote-worker tests.

Keys (host and user) and the server's config are generated in a temporary folder; no
system configuration is read or changed. As root, sshd wants its privilege-separation
folder ``/run/sshd``: it then runs in a private mount namespace (``unshare``) with a
tmpfs of its own over ``/run``, so the real ``/run`` is never touched.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

SSHD = "/usr/sbin/sshd"


def require_sshd() -> None:
    """Fail in CI (``.ci/run`` installs openssh-server), skip elsewhere."""
    if Path(SSHD).exists() and shutil.which("ssh") and shutil.which("ssh-keygen"):
        if os.geteuid() != 0 or shutil.which("unshare"):
            return
    if os.environ.get("CI"):
        pytest.fail("sshd/ssh are missing: .ci/run installs them (apt-get install openssh-server)")
    pytest.skip("openssh-server is not installed (required in CI)")


@dataclass
class Sshd:
    port: int
    key: Path
    user: str
    proc: subprocess.Popen

    def spec(self, python: str, chdir: Path, count: int = 1) -> str:
        """An xdist ``--tx`` spec reaching this server."""
        ssh = (
            f"-p {self.port} -i {self.key} -o StrictHostKeyChecking=no"
            " -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
            f" {self.user}@127.0.0.1"
        )
        head = f"{count}*" if count > 1 else ""
        return f"{head}ssh={ssh}//python={python}//chdir={chdir}"

    def sessions(self) -> list[psutil.Process]:
        """Every live process the server started (its sessions and what they run)."""
        try:
            below = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return []
        return [p for p in below if _alive(p)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(folder: Path) -> Sshd:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "user_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True
        )
    (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
    port = _free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {folder / 'authorized_keys'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
    )
    command = [SSHD, "-D", "-e", "-f", str(config)]
    if os.geteuid() == 0:
        inner = "mount -t tmpfs none /run && mkdir -p /run/sshd && exec " + " ".join(command)
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner]
    log = open(folder / "sshd.log", "wb")  # noqa: SIM115 - the server writes it while it runs
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return Sshd(port, folder / "user_key", getpass.getuser(), proc)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError(f"sshd did not start: {(folder / 'sshd.log').read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    try:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
    except psutil.Error:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait(timeout=10)

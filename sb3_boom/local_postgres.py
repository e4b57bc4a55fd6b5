"""
A throwaway PostgreSQL server on this machine, from the system's server binaries: ``initdb`` in a fresh
folder, ``postgres`` listening on ``127.0.0.1`` and a free port, trust authentication, one database.
The test suite and the benchmark scripts run their distributed studies against it; it is also a quick
way to try ``--storage`` on one machine:

    python -m sb3_boom.local_postgres          # prints the URL, serves until Ctrl+C

PostgreSQL refuses to run as root: as root, the server runs as the ``postgres`` system user (the
Debian/Ubuntu server packages create it), else as ``nobody``. The binaries are looked up in
``$SB3_BOOM_PG_BIN``, then ``/usr/lib/postgresql/<version>/bin`` (newest first), then ``PATH``.
"""

import glob
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")


def find_server_binaries() -> pathlib.Path:
    """The folder with ``initdb``, ``pg_ctl`` and ``postgres``; a clear error naming the fix if there is none."""
    candidates = []
    if os.environ.get("SB3_BOOM_PG_BIN"):
        candidates.append(pathlib.Path(os.environ["SB3_BOOM_PG_BIN"]))
    # Debian/Ubuntu keep the server programs off PATH, one folder per major version.
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(
        (pathlib.Path(path) for path in versions), key=lambda path: _version_key(path.parent.name), reverse=True
    )
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(pathlib.Path(on_path).parent)
    for folder in candidates:
        if all((folder / program).is_file() for program in SERVER_PROGRAMS):
            return folder
    raise FileNotFoundError(
        "PostgreSQL server programs (initdb, pg_ctl, postgres) not found in $SB3_BOOM_PG_BIN, /usr/lib/postgresql/*/bin "
        "or PATH. Install them (Debian/Ubuntu: apt-get install postgresql) or set SB3_BOOM_PG_BIN to their folder."
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalPostgres:
    """
    A PostgreSQL server in a folder of its own, started by :meth:`start` (or ``with``) and removed by :meth:`stop`.

    :param data_dir: folder for the cluster and its log (default: a new temporary folder, removed on stop)
    :param port: TCP port on 127.0.0.1 (default: a free one)
    :param database: database created for the studies
    :param user: database superuser name
    :param durable: keep PostgreSQL's fsync on; ``False`` (tests) turns off fsync and synchronous commits,
        which is safe against a server restart but not against a power cut
    :param bin_dir: folder of the server programs (default: :func:`find_server_binaries`)
    """

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        port: int | None = None,
        database: str = "optuna",
        user: str = "boom",
        durable: bool = True,
        bin_dir: str | os.PathLike | None = None,
    ):
        self.bin_dir = pathlib.Path(bin_dir) if bin_dir else find_server_binaries()
        self._own_dir = data_dir is None
        self.root = pathlib.Path(data_dir) if data_dir else pathlib.Path(tempfile.mkdtemp(prefix="sb3-boom-pg-"))
        self._own_port = port is None
        self.port = port or free_port()
        self.database = database
        self.user = user
        self.durable = durable
        self.os_user = self._os_user()

    @property
    def data_dir(self) -> pathlib.Path:
        return self.root / "data"

    @property
    def log_file(self) -> pathlib.Path:
        return self.root / "server.log"

    def url(self, driver: str = "psycopg") -> str:
        """SQLAlchemy URL of the database (``postgresql+psycopg://...``; ``driver=""``: ``postgresql://...``)."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @staticmethod
    def _os_user() -> pwd.struct_passwd | None:
        """The account to run the server as: None (ourselves) unless we are root."""
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
        raise RuntimeError("running as root, but neither a 'postgres' nor a 'nobody' account exists to run PostgreSQL as")

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        kwargs = {}
        if self.os_user is not None:
            kwargs = dict(user=self.os_user.pw_uid, group=self.os_user.pw_gid, extra_groups=[])
        # PGDATA / PG* variables of the caller must not point the programs at another cluster.
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LC_ALL"] = "C"
        result = subprocess.run(
            [str(self.bin_dir / program), *args], capture_output=True, text=True, env=env, cwd=self.root, **kwargs
        )
        if check and result.returncode != 0:
            log = self.log_file.read_text()[-3000:] if self.log_file.exists() else ""
            raise RuntimeError(
                f"{program} {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}{log}"
            )
        return result

    def _options(self) -> str:
        options = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.root}", "-c max_connections=200"]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        return " ".join(options)

    def start(self) -> "LocalPostgres":
        """Create the cluster and its database (first call), start the server and wait until it accepts connections."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.os_user is not None:
            os.chown(self.root, self.os_user.pw_uid, self.os_user.pw_gid)
        fresh = not (self.data_dir / "PG_VERSION").exists()
        if fresh:
            self._run("initdb", "-D", str(self.data_dir), "-U", self.user, "--auth=trust", "--encoding=UTF8", "--no-sync")
        for attempt in range(3):
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-o",
                    self._options(),
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
                break
            except RuntimeError as error:
                # The free port was taken between free_port() and the server's bind: take another one.
                if not self._own_port or attempt == 2 or "could not bind" not in str(error):
                    raise
                self.port = free_port()
        if fresh:
            self._create_database()
        return self

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def restart(self, down_s: float = 0.0) -> None:
        """Stop the server (fast shutdown: open connections are cut), wait ``down_s`` seconds, start it again."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        time.sleep(down_s)
        self.start()

    def stop(self) -> None:
        """Stop the server and, if this object made the folder, remove it."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop", check=False)
        if self._own_dir:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LocalPostgres":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main() -> None:
    server = LocalPostgres().start()
    print(server.url(), flush=True)
    print(f"serving from {server.root}; Ctrl+C stops and removes it", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()

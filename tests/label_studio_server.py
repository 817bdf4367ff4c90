"""A real Label Studio server on 127.0.0.1 for tests and the docs' screenshot (not a test module).

Started with a temporary data directory and a known user; the organization's legacy API tokens are
switched on through Label Studio's own Django settings (Organization -> API Tokens Settings in its
UI), since Label Studio 1.2x refuses the token given with ``--user-token`` otherwise. Stopped, with
its whole process group, when the ``with`` block ends, on success or failure.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
from pathlib import Path

from rltf.spans.labelstudio import LabelStudioClient

ROOT = Path(__file__).resolve().parents[1]
LS_BIN = Path(os.environ.get("RLTF_LABEL_STUDIO_BIN", ROOT / ".venv-labelstudio" / "bin" / "label-studio"))
USER, PASSWORD = "reviewer@rltf.test", "rltf-test-password"
ENABLE_LEGACY_TOKENS = (
    "from jwt_auth.models import JWTSettings; from organizations.models import Organization\n"
    "for o in Organization.objects.all():\n"
    "    JWTSettings.objects.update_or_create(organization=o, defaults={'legacy_api_tokens_enabled': True})\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabelStudioServer:
    def __init__(self, binary: Path, data_dir: Path, startup_seconds: float = 300.0):
        self.binary, self.data_dir, self.startup_seconds = Path(binary), Path(data_dir), startup_seconds
        self.port, self.token = free_port(), secrets.token_hex(20)
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir), "SENTRY_DSN": "",
                    "FRONTEND_SENTRY_DSN": "", "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true"}
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "LabelStudioServer":
        self.log = open(self.data_dir / "server.log", "w")
        self.proc = subprocess.Popen([str(self.binary), "start", "--no-browser", "--host", "127.0.0.1", "--port",
                                      str(self.port), "--username", USER, "--password", PASSWORD, "--user-token",
                                      self.token], env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            LabelStudioClient(self.url, self.token).wait_until_up(self.startup_seconds)
            self.django(ENABLE_LEGACY_TOKENS)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def django(self, code: str) -> str:
        """Run Python inside Label Studio's Django project (its manage.py shell)."""
        python = self.binary.parent / "python"
        package = subprocess.run([str(python), "-c", "import label_studio, os; print(os.path.dirname(label_studio.__file__))"],
                                 capture_output=True, text=True, env=self.env, check=True).stdout.strip()
        done = subprocess.run([str(python), "manage.py", "shell", "-c", code], cwd=package, env=self.env,
                              capture_output=True, text=True, timeout=180)
        if done.returncode:
            raise RuntimeError(f"Label Studio's Django shell failed: {done.stderr[-2000:]}")
        return done.stdout

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

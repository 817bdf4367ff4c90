"""The sandbox contains hostile programs; the test process survives each."""
import os
import time

import pytest

from rltf.tasks.sandbox import SandboxLimits, run_python

LIMITS = SandboxLimits(timeout=3.0, memory_mb=512)


def test_ordinary_program_runs():
    r = run_python("print(sum(range(10)))", LIMITS)
    assert r.passed and r.stdout.strip() == "45"


def test_infinite_loop_is_killed_on_time():
    t = time.monotonic()
    r = run_python("while True:\n    pass\n", LIMITS)
    assert r.status == "timeout" and time.monotonic() - t < LIMITS.timeout + 5


def test_fork_bomb_is_contained():
    r = run_python("import os\nwhile True:\n    os.fork()\n", LIMITS)
    assert not r.passed
    assert os.getpid() > 0  # still here


def test_subprocess_is_refused():
    r = run_python("import subprocess\nsubprocess.run(['sh', '-c', 'echo hi'])\n", LIMITS)
    assert not r.passed and "hi" not in r.stdout


def test_huge_allocation_fails_inside_the_child():
    r = run_python("x = bytearray(8 * 1024 ** 3)\nprint('allocated')\n", LIMITS)
    assert not r.passed and "allocated" not in r.stdout


def test_writes_outside_the_temp_dir_are_refused(tmp_path):
    target = tmp_path / "escaped.txt"
    os.chmod(tmp_path, 0o777)
    r = run_python(f"open({str(target)!r}, 'w').write('x')\n", LIMITS)
    assert not r.passed and not target.exists()
    inside = run_python("open('ok.txt', 'w').write('x')\nprint(open('ok.txt').read())\n", LIMITS)
    assert inside.passed and inside.stdout.strip() == "x"


def test_network_is_refused():
    code = "import socket\ns = socket.socket()\ns.settimeout(1)\ns.connect(('127.0.0.1', 9))\nprint('connected')\n"
    r = run_python(code, LIMITS)
    assert not r.passed and "connected" not in r.stdout


def test_output_flood_is_capped():
    r = run_python("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", LIMITS)
    assert not r.passed and len(r.stdout) <= LIMITS.max_output


@pytest.mark.parametrize("code", ["import ctypes\n",
                                  "import sys\nsys.addaudithook(lambda *a: None)\nimport os\nos.system('true')\n"])
def test_guard_cannot_be_disabled(code):
    assert not run_python(code, LIMITS).passed

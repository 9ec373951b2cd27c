"""A DVC project of trivial stages, built in a temporary directory for the flow's tests.

``a`` and ``b`` are independent and each sleep ``sleep.a`` / ``sleep.b`` seconds, ``c``
reads both; ``k`` kills itself (SIGKILL) after writing half its output, the first time;
``r`` kills itself with DVC the first time, leaving DVC's rwlock cut short;
``evaluate`` writes a page as the pipeline's last stage does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

WORK = """
import json, os, signal, sys, time
name, seconds = sys.argv[1], float(sys.argv[2])
start = time.time()
time.sleep(seconds)
os.makedirs("out", exist_ok=True)
inputs = {p: json.load(open(p)) for p in sys.argv[3:]}
if name == "k" and not os.path.exists("killed-once"):
    open("killed-once", "w").close()
    open("out/k.json", "w").write('{"half": ')
    os.kill(os.getpid(), signal.SIGKILL)
if name == "r" and not os.path.exists("killed-once"):
    # The whole run killed while DVC rewrote its rwlock: DVC and the stage die, the
    # file is left cut short.
    open("killed-once", "w").close()
    open(".dvc/tmp/rwlock", "w").write('{"read": {"work.py": [{"pid": 12')
    os.killpg(os.getpgid(0), signal.SIGKILL)
json.dump({"stage": name, "start": start, "end": time.time(), "inputs": inputs,
           "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
           "threads": os.environ.get("WAVEGEN_THREADS"),
           "threads_at_end": (open(os.environ["WAVEGEN_THREADS_FILE"]).read()
                              if os.environ.get("WAVEGEN_THREADS_FILE") else None),
           "wait_policy": os.environ.get("OMP_WAIT_POLICY")},
          open(f"out/{name}.json", "w"))
"""

DVC_YAML = """
stages:
  a:
    cmd: python work.py a ${sleep.a}
    deps:
      - work.py
    params:
      - sleep.a
    outs:
      - out/a.json
  b:
    cmd: python work.py b ${sleep.b}
    deps:
      - work.py
    params:
      - sleep.b
    outs:
      - out/b.json
    meta:
      gpu: true
  c:
    cmd: python work.py c 0 out/a.json out/b.json
    deps:
      - work.py
      - out/a.json
      - out/b.json
    outs:
      - out/c.json
"""

KILLED_STAGE = """
  k:
    cmd: python work.py k 0
    deps:
      - work.py
    outs:
      - out/k.json
  r:
    cmd: python work.py r 0
    deps:
      - work.py
    outs:
      - out/r.json
"""


# The pipeline's last stage by name, writing a page as wavegen's does.
REPORT_STAGE = """
  evaluate:
    cmd: >-
      python -c "import os; os.makedirs('report', exist_ok=True);
      open('report/index.html', 'w').write('<p>page</p>')"
    deps:
      - out/a.json
    outs:
      - report/index.html
"""


def make_toy_repo(
    root: Path,
    *,
    seconds: float = 1.5,
    with_killed_stage: bool = False,
    with_report_stage: bool = False,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "work.py").write_text(WORK)
    (root / "params.yaml").write_text(f"sleep:\n  a: {seconds}\n  b: {seconds}\n")
    (root / "dvc.yaml").write_text(
        DVC_YAML
        + (KILLED_STAGE if with_killed_stage else "")
        + (REPORT_STAGE if with_report_stage else "")
    )
    (root / ".gitignore").write_text("killed-once\n")
    for cmd in (
        ["git", "init", "-q"],
        [sys.executable, "-m", "dvc", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "toy"],
    ):
        subprocess.run(cmd, cwd=root, check=True, capture_output=True)
    return root

"""Pipeline: full `dvc repro` of the demo, a no-op `dvc repro`, peak memory per stage.

Runs in a throw-away clone of the repository so the working copy is untouched.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TQDM_DISABLE": "1",
    }


def run(simulate_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="featureops-pipeline-") as tmp:
        clone = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        params_path = clone / "params.yaml"
        params = yaml.safe_load(params_path.read_text())
        if simulate_overrides:
            params["simulate"].update(simulate_overrides)
            params_path.write_text(yaml.safe_dump(params, sort_keys=False))
        dvc = str(Path(sys.executable).parent / "dvc")
        start = time.perf_counter()
        subprocess.run([dvc, "repro", "-q"], cwd=clone, env=_env(), check=True, capture_output=True)
        full = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([dvc, "repro"], cwd=clone, env=_env(), check=True, capture_output=True)
        noop = time.perf_counter() - start
        stages = list(yaml.safe_load((clone / "dvc.yaml").read_text())["stages"])
        memory = {}
        for stage in stages:
            cmd = yaml.safe_load((clone / "dvc.yaml").read_text())["stages"][stage]["cmd"]
            cmd = cmd.replace("${feast.repo}", params["feast"]["repo"])
            proc = subprocess.run(
                ["/usr/bin/time", "-v", "sh", "-c", cmd],
                cwd=clone,
                env=_env(),
                capture_output=True,
                text=True,
            )
            match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
            wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", proc.stderr)
            memory[stage] = {
                "peak_rss_mb": round(int(match.group(1)) / 1024) if match else None,
                "wall": wall.group(1) if wall else None,
                "exit": proc.returncode,
            }
            print(f"  stage {stage}: {memory[stage]}", flush=True)
        sensors = yaml.safe_load((clone / "metrics" / "simulate.json").read_text())["rows"][
            "sensors"
        ]
    return {
        "sensor_rows": sensors,
        "full_repro_s": round(full, 1),
        "noop_repro_s": round(noop, 2),
        "stages": memory,
    }

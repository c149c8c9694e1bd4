"""Pytest setup for the Python tests: runs `attnlab golden --out DIR` once per session and
parametrizes the golden tests over the case folders it writes."""

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GOLDEN_TIMEOUT_S = 600


@dataclass
class GoldenRun:
    """Outcome of running the C++ golden command: case folders, or why there are none."""
    cases: list = field(default_factory=list)  # Paths of DIR/<case>
    skip: str = ""                             # reason to skip (no binary, not required)
    error: str = ""                            # reason to fail
    temp_dir: str = ""                         # removed at session end
    out: str = ""                              # DIR itself (attention.safetensors lies there)


_golden_run = None


def _required():
    return os.environ.get("ATTNLAB_REQUIRE_GOLDEN", "") not in ("", "0")


def _run_golden():
    binary = Path(os.environ.get("ATTNLAB_BIN", REPO / "build" / "attnlab"))
    if not binary.is_file():
        why = f"C++ binary {binary} not found (build it, or point ATTNLAB_BIN at it)"
        if _required():
            return GoldenRun(error=why + "; ATTNLAB_REQUIRE_GOLDEN is set, so this is a failure")
        return GoldenRun(skip=why + "; set ATTNLAB_REQUIRE_GOLDEN=1 to make this a failure")
    # ATTNLAB_GOLDEN_DIR keeps the generated files for inspection; otherwise a temp dir.
    keep = os.environ.get("ATTNLAB_GOLDEN_DIR", "")
    out = keep or tempfile.mkdtemp(prefix="attnlab-golden-")
    run = GoldenRun(temp_dir="" if keep else out, out=out)
    Path(out).mkdir(parents=True, exist_ok=True)
    cmd = [str(binary), "golden", "--out", out]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=GOLDEN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        run.error = f"`{' '.join(cmd)}` ran longer than {GOLDEN_TIMEOUT_S} s"
        return run
    if proc.returncode != 0:
        run.error = (f"`{' '.join(cmd)}` exited with {proc.returncode}\n"
                     f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
        return run
    run.cases = sorted(d for d in Path(out).iterdir() if d.is_dir())
    if not run.cases:
        run.error = f"`{' '.join(cmd)}` succeeded but wrote no case folders into {out}"
    return run


def golden_run():
    """The session's golden run, generated on first use (at collection time)."""
    global _golden_run
    if _golden_run is None:
        _golden_run = _run_golden()
    return _golden_run


def pytest_generate_tests(metafunc):
    if "golden_case" in metafunc.fixturenames:
        run = golden_run()
        if run.cases:
            metafunc.parametrize("golden_case", run.cases, ids=[d.name for d in run.cases], indirect=True)
        else:
            metafunc.parametrize("golden_case", [None], ids=["no-cases"], indirect=True)


def _cases_or_stop(run):
    if run.skip:
        pytest.skip(run.skip)
    if run.error:
        pytest.fail(run.error, pytrace=False)


@pytest.fixture
def golden_case(request):
    """Path of one case folder DIR/<case> written by the C++ engine."""
    run = golden_run()
    _cases_or_stop(run)
    return request.param


@pytest.fixture(scope="session")
def golden_cases():
    """All case folders written by the C++ engine."""
    run = golden_run()
    _cases_or_stop(run)
    return run.cases


@pytest.fixture(scope="session")
def golden_dir():
    """The folder DIR the C++ engine wrote its golden cases into."""
    run = golden_run()
    _cases_or_stop(run)
    return Path(run.out)


def pytest_sessionfinish(session, exitstatus):
    if _golden_run is not None and _golden_run.temp_dir:
        shutil.rmtree(_golden_run.temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def fake_golden_dir(tmp_path_factory):
    """Golden folders written by the float32 stand-in engine (fake_engine.py), one per
    configuration in fake_engine.CASES; lets the golden checker be tested without the binary."""
    import fake_engine
    out = tmp_path_factory.mktemp("fake-golden")
    for seed, (name, (model, optim)) in enumerate(fake_engine.CASES.items()):
        fake_engine.write_case(out / name, model, optim, seed=seed)
    return out

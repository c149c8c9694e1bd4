"""Real disk faults under runs and sweeps: a 1 MiB tmpfs filled up (ENOSPC) at the start of
a run, in the middle of a checkpoint and under a sweep, and remounted read-only (EROFS).
A fault must end the command with one clear error and exit code 2, leave the last
checkpoint as it was, and, once the disk is usable again, a resume must end bit-identical
to an uninterrupted run. Mounting needs root: the tests skip (saying why) otherwise."""

import errno
import fcntl
import os
import subprocess
from pathlib import Path

import pytest

from test_crash import BIN, assert_same_run, attnlab

pytestmark = pytest.mark.skipif(not BIN.is_file(), reason=f"attnlab binary {BIN} not built")

# iarc-quick made small: a checkpoint of about 200 kB, so two fit in the 1 MiB disk.
SMALL = ["--recipe", "iarc-quick"] + [a for s in (
    "model.dim=32", "model.layers=1", "train.steps=12", "train.warmup=2", "train.eval_every=6",
    "train.eval_windows=16", "train.checkpoint_every=4", "train.log_every=2",
    "train.threads=1") for a in ("--set", s)]

NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"
READ_ONLY = os.strerror(errno.EROFS)  # "Read-only file system"

GRID = """
[base]
recipe = "iarc-quick"
[base.model]
dim = 32
layers = 1
[base.train]
steps = 12
warmup = 2
eval_every = 6
eval_windows = 16
checkpoint_every = 4
log_every = 2
[grid]
"train.seed" = [1]
"""


@pytest.fixture
def disk(tmp_path):
    """A mounted 1 MiB tmpfs, unmounted again whatever the test did."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (these tests fill and remount a real disk)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(mnt, leave=0):
    """Fills the disk with MNT/filler until no byte is left, then frees about `leave` bytes."""
    filler = mnt / "filler"
    with open(filler, "ab", buffering=0) as f:
        for chunk in (1 << 16, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def assert_error(r, *needles):
    """Exit code 2 with one error line naming what went wrong."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), r.stderr
    for needle in needles:
        assert needle in last, (needle, r.stderr)


def assert_clean(d):
    """No temporaries or staged checkpoints left behind, and no process holding the lock."""
    left = [p.name for p in Path(d).iterdir()
            if ".tmp." in p.name or p.name.startswith(".checkpoint")]
    assert not left, f"{d}: left behind: {left}"
    lock = Path(d) / ".lock"
    if lock.exists():
        with open(lock) as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if someone still holds it


def files(d):
    return {p.name: p.read_bytes() for p in Path(d).iterdir() if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    r = attnlab("train", *SMALL, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    return out


def test_disk_full_at_the_start_of_a_new_run(disk, reference):
    filler = fill(disk)
    run = disk / "run"
    r = attnlab("train", *SMALL, "--out", run, "--quiet")
    assert_error(r, NO_SPACE)
    assert not (run / "config.toml").exists()  # not a run folder: nothing half-written
    assert_clean(run)
    filler.unlink()
    r = attnlab("train", *SMALL, "--out", run, "--quiet")  # the folder is still free to use
    assert r.returncode == 0, r.stderr
    assert_same_run(run, reference)


def test_disk_full_in_the_middle_of_a_checkpoint(disk, reference):
    run = disk / "run"
    r = attnlab("train", *SMALL, "--out", run, "--quiet", "--stop-after", "4")
    assert r.returncode == 0, r.stderr
    before = files(run)
    # Room for the next checkpoint's optimizer state and half its model file, no more.
    room = len(before["optimizer.safetensors"]) + len(before["model.safetensors"]) // 2
    filler = fill(disk, leave=room + 8192)  # + the config rewritten at the resume
    r = attnlab("train", "--resume", run, "--quiet")
    assert_error(r, NO_SPACE, ".checkpoint.tmp/model.safetensors")
    assert files(run) == before, "the checkpoint of step 4 changed"
    assert_clean(run)
    # Still no room: the same error again, the checkpoint again intact.
    assert_error(attnlab("train", "--resume", run, "--quiet"), NO_SPACE)
    assert files(run) == before
    filler.unlink()
    r = attnlab("train", "--resume", run, "--quiet")
    assert r.returncode == 0, r.stderr
    assert_same_run(run, reference)
    assert_clean(run)


def test_sweep_into_a_full_disk(disk, tmp_path, reference):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    sweep = disk / "sweep"
    # Full before the sweep starts: it stops at its first write.
    filler = fill(disk)
    r = attnlab("sweep", "--grid", grid, "--out", sweep, "--jobs", "1")
    assert_error(r, NO_SPACE)
    assert_clean(sweep)
    # Full under its run, after its first checkpoint: the run fails with that checkpoint
    # intact, and the sweep names it.
    filler.unlink()
    ref = files(reference)
    checkpoint = len(ref["model.safetensors"]) + len(ref["optimizer.safetensors"])
    filler = fill(disk, leave=checkpoint * 3 // 2)
    r = attnlab("sweep", "--grid", grid, "--out", sweep, "--jobs", "1")
    assert r.returncode == 1, r.stdout + r.stderr  # 1: the sweep ran, a run failed
    assert "run FAILED" in r.stdout and NO_SPACE in r.stdout, r.stdout
    assert "failed runs" in r.stderr, r.stderr
    assert (sweep / "run" / "model.safetensors").exists()
    assert_clean(sweep)
    assert_clean(sweep / "run")
    # Space again: the same sweep command resumes the run and finishes it.
    filler.unlink()
    r = attnlab("sweep", "--grid", grid, "--out", sweep, "--jobs", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "resuming" in (sweep / "run" / "train.log").read_text()
    assert any(line.startswith("run,1,") for line in (sweep / "runs.csv").read_text().splitlines())
    assert_clean(sweep / "run")


def test_read_only_disk(disk):
    run = disk / "run"
    r = attnlab("train", *SMALL, "--out", run, "--quiet", "--stop-after", "4")
    assert r.returncode == 0, r.stderr
    before = files(run)
    r = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only: {r.stderr.strip()}")
    r = attnlab("eval", "--run", run)
    assert r.returncode == 0 and "overall" in r.stdout, r.stderr
    for args in (["--resume", run], ["--resume", run, "--set", "train.steps=20"],
                 [*SMALL, "--out", disk / "new"], [*SMALL, "--out", run, "--force"]):
        r = attnlab("train", *args, "--quiet")
        assert_error(r, READ_ONLY)
    assert files(run) == before

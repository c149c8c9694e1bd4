"""Crash safety of run and sweep folders, tested by killing the real binary: at every
write and rename of a run (ATTNLAB_CRASH_AT), token and diffusion runs, at random moments
(a soak), with two writers on one folder, and a sweep killed with SIGKILL (its runs must
die with it). Every resume must end bit-identical to an uninterrupted run (timing columns
aside)."""

import gzip
import json
import os
import random
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("ATTNLAB_BIN", REPO / "build" / "attnlab"))

pytestmark = pytest.mark.skipif(not BIN.is_file(), reason=f"attnlab binary {BIN} not built")

TINY = """
[model]
layers = 1
dim = 16
heads = 2
[task]
name = "iarc"
[train]
steps = {steps}
batch = 4
context = 16
warmup = 2
eval_every = {eval_every}
eval_windows = 16
log_every = 2
checkpoint_every = {ckpt}
threads = 1
"""


def tiny_config(tmp, steps=12, eval_every=6, ckpt=4, name="tiny.toml"):
    path = tmp / name
    path.write_text(TINY.format(steps=steps, eval_every=eval_every, ckpt=ckpt))
    return path


def attnlab(*args, env=None, timeout=120):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def start(*args):
    return subprocess.Popen([str(BIN), *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def without_timing(metrics):
    """metrics.csv without tokens_per_s and elapsed_s (the only columns that vary)."""
    return [",".join(line.split(",")[:-2]) for line in metrics.splitlines()]


TIMING_KEYS = ("wall_s", "tokens_per_s", "images_per_s", "sample_s")


def run_state(d):
    """Everything a finished run folder holds that must not depend on interruptions."""
    d = Path(d)
    summary = json.loads((d / "summary.json").read_text())
    for timing in TIMING_KEYS:
        summary.pop(timing, None)
    state = {
        "model": (d / "model.safetensors").read_bytes(),
        "optimizer": (d / "optimizer.safetensors").read_bytes(),
        "config": (d / "config.toml").read_text(),
        "metrics": without_timing((d / "metrics.csv").read_text()),
        "summary": summary,
    }
    if (d / "samples.png").exists():  # a diffusion run's samples
        state["samples"] = (d / "samples.png").read_bytes()
    return state


def assert_same_run(d, ref):
    got, want = run_state(d), run_state(ref)
    assert got.keys() == want.keys(), f"{d}: holds {sorted(got)}, not {sorted(want)}"
    for key in want:
        assert got[key] == want[key], f"{d}: {key} differs from the uninterrupted run"
    leftovers = [p.name for p in Path(d).iterdir()
                 if ".tmp." in p.name or p.name.startswith(".checkpoint")]
    assert not leftovers, f"{d}: stale files left: {leftovers}"


def resume_until_done(d, limit=50):
    for _ in range(limit):
        r = attnlab("train", "--resume", d, "--quiet")
        assert r.returncode == 0, f"resume of {d} failed ({r.returncode}): {r.stderr}"
        if (Path(d) / "summary.json").exists():
            return
    raise AssertionError(f"{d} did not complete after {limit} resumes")


def wait_for(cond, timeout=20.0, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def lock_pid(d):
    try:
        return int((Path(d) / ".lock").read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def alive(pid):
    """True while pid runs (a zombie counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    cfg = tiny_config(tmp)
    r = attnlab("train", "--config", cfg, "--out", tmp / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    return cfg, tmp / "run"


def kill_at_every_crash_point(tmp_path, new_run, ref, limit=400):
    """Kills new_run(folder, env, *args) at each crash point in turn, resumes it, compares it with ref;
    returns how many crash points there were."""
    points = 0
    for n in range(1, limit):
        d = tmp_path / f"crash{n}"
        r = new_run(d, {"ATTNLAB_CRASH_AT": str(n)})
        if r.returncode == 0:  # n is past the last crash point of a whole run
            assert_same_run(d, ref)
            return points
        assert r.returncode == -signal.SIGKILL, f"crash point {n}: exit {r.returncode}: {r.stderr}"
        points += 1
        if not (d / "config.toml").exists():
            # Killed before the run folder holds a configuration: nothing to resume,
            # and resume says so; a new start then works.
            r = attnlab("train", "--resume", d, "--quiet")
            assert r.returncode == 2 and "not a run folder" in r.stderr, r.stderr
            r = new_run(d, {}, "--force")
            assert r.returncode == 0, r.stderr
        else:
            resume_until_done(d)
        assert_same_run(d, ref)
    raise AssertionError(f"the run still crashed at crash point {limit}")


def test_kill_at_every_crash_point_then_resume(tmp_path, reference):
    cfg, ref = reference
    points = kill_at_every_crash_point(
        tmp_path, lambda d, env, *args: attnlab("train", "--config", cfg, "--out", d, "--quiet", *args,
                                     env=env),
        ref)
    # 3 checkpoints of 3-4 files, the config and the write probe: dozens of points.
    assert points >= 30, f"only {points} crash points were reached"


def kill_resume_at_every_crash_point(tmp_path, base, ref, limit=200):
    """Kills a resume of the stopped run `base` at each of its crash points in turn."""
    for n in range(1, limit):
        d = tmp_path / f"resume{n}"
        subprocess.run(["cp", "-a", str(base), str(d)], check=True)
        r = attnlab("train", "--resume", d, "--quiet", env={"ATTNLAB_CRASH_AT": str(n)})
        if r.returncode == 0:
            assert_same_run(d, ref)
            return n - 1
        assert r.returncode == -signal.SIGKILL, r.stderr
        resume_until_done(d)
        assert_same_run(d, ref)
    raise AssertionError(f"the resume still crashed at crash point {limit}")


def test_kill_during_resume_then_resume(tmp_path, reference):
    """A resume killed at each of its own crash points is resumable in turn."""
    cfg, ref = reference
    base = tmp_path / "base"
    r = attnlab("train", "--config", cfg, "--out", base, "--quiet", "--stop-after", "4")
    assert r.returncode == 0, r.stderr
    kill_resume_at_every_crash_point(tmp_path, base, ref)


def write_tiny_fmnist(d):
    """A stand-in for Fashion-MNIST in its IDX format: 8x8 images, class k a bright bar at
    row k % 8; 40 training and 20 test images (the FID classifier trains in a moment)."""
    d.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", 40), ("t10k", 20)):
        rng = random.Random(n)
        pixels, labels = bytearray(), bytearray()
        for i in range(n):
            labels.append(i % 10)
            pixels += bytes(200 + rng.randrange(50) if p // 8 == i % 8 else rng.randrange(40)
                            for p in range(64))
        (d / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">4I", 0x803, n, 8, 8) + bytes(pixels)))
        (d / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">2I", 0x801, n) + bytes(labels)))


@pytest.fixture(scope="module")
def uvit_reference(tmp_path_factory):
    """A tiny uvit-fmnist-quick run (2 checkpoints, the second with samples and summary),
    run once uninterrupted; it also trains the FID classifier every later run reuses."""
    tmp = tmp_path_factory.mktemp("uvit")
    data = tmp / "fmnist"
    write_tiny_fmnist(data)
    sets = [f"task.images={data}", f"diffusion.classifier={data}/classifier.safetensors",
            "model.layers=3", "model.dim=8", "model.heads=2", "train.steps=6", "train.batch=4",
            "train.warmup=1", "train.eval_every=3", "train.eval_windows=8", "train.log_every=1",
            "train.threads=1", "diffusion.eval_samples=20", "diffusion.sample_steps=2"]
    args = ["--recipe", "uvit-fmnist-quick"] + [a for s in sets for a in ("--set", s)]
    r = attnlab("train", *args, "--out", tmp / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    assert (data / "classifier.safetensors").exists()
    assert (tmp / "run" / "samples.png").exists()
    return args, tmp / "run"


def test_diffusion_kill_at_every_crash_point_then_resume(tmp_path, uvit_reference):
    args, ref = uvit_reference
    points = kill_at_every_crash_point(
        tmp_path, lambda d, env, *more: attnlab("train", *args, "--out", d, "--quiet", *more,
                                                env=env), ref)
    # 2 checkpoints (the last with samples.png and summary.json), the config, the probe.
    assert points >= 25, f"only {points} crash points were reached"


def test_diffusion_kill_during_resume_then_resume(tmp_path, uvit_reference):
    args, ref = uvit_reference
    base = tmp_path / "base"
    r = attnlab("train", *args, "--out", base, "--quiet", "--stop-after", "3")
    assert r.returncode == 0, r.stderr
    assert not (base / "summary.json").exists() and not (base / "samples.png").exists()
    assert kill_resume_at_every_crash_point(tmp_path, base, ref) >= 10


def test_diffusion_resume_completes_a_finished_run(tmp_path, uvit_reference):
    """A finished run missing its samples or summary (killed by an older version after its
    last checkpoint, or files removed) is completed by --resume, exit 0; so is one whose
    completion was killed in turn."""
    _, ref = uvit_reference
    want = json.loads((ref / "summary.json").read_text())
    for n in range(1, 50):
        d = tmp_path / f"complete{n}"
        subprocess.run(["cp", "-a", str(ref), str(d)], check=True)
        (d / "summary.json").unlink()
        (d / "samples.png").unlink()
        first = attnlab("train", "--resume", d, "--quiet", env={"ATTNLAB_CRASH_AT": str(n)})
        r = first
        if first.returncode != 0:  # killed while completing: the next resume completes it
            assert first.returncode == -signal.SIGKILL, first.stderr
            r = attnlab("train", "--resume", d, "--quiet")
        assert r.returncode == 0 and "already complete" in r.stderr, r.stderr
        assert (d / "samples.png").read_bytes() == (ref / "samples.png").read_bytes()
        got = json.loads((d / "summary.json").read_text())
        assert got.keys() == want.keys()
        for key in set(want) - set(TIMING_KEYS):
            if key in ("train_loss", "eval_loss"):  # rebuilt from metrics.csv's 6 decimals
                assert abs(got[key] - want[key]) < 1e-6, (key, got[key], want[key])
            else:
                assert got[key] == want[key], key
        leftovers = [p.name for p in d.iterdir()
                     if ".tmp." in p.name or p.name.startswith(".checkpoint")]
        assert not leftovers, leftovers
        if first.returncode == 0:  # past the completion's last crash point
            break
    assert n > 4, f"the completion has only {n - 1} crash points"
    # Only the samples missing: they come back; the summary is left as it was.
    d = tmp_path / "samples-only"
    subprocess.run(["cp", "-a", str(ref), str(d)], check=True)
    (d / "samples.png").unlink()
    r = attnlab("train", "--resume", d, "--quiet")
    assert r.returncode == 0, r.stderr
    assert (d / "samples.png").read_bytes() == (ref / "samples.png").read_bytes()
    assert (d / "summary.json").read_bytes() == (ref / "summary.json").read_bytes()


def test_random_kill_soak(tmp_path):
    """At least 20 SIGKILLs at random moments; every resume continues; the end is exact."""
    cfg = tiny_config(tmp_path, steps=120, eval_every=40, ckpt=3)
    ref = tmp_path / "ref"
    t0 = time.time()
    r = attnlab("train", "--config", cfg, "--out", ref, "--quiet")
    assert r.returncode == 0, r.stderr
    full = time.time() - t0
    rng = random.Random(13)
    d = tmp_path / "soak"
    kills, deadline = 0, time.time() + 120
    while kills < 20 or not (d / "summary.json").exists():
        assert time.time() < deadline, f"soak ran out of time after {kills} kills"
        if (d / "summary.json").exists():  # finished between kills: go again from scratch
            r = attnlab("train", "--resume", d, "--quiet")
            assert r.returncode == 0, r.stderr
            assert_same_run(d, ref)
            subprocess.run(["rm", "-rf", str(d)], check=True)
        if (d / "config.toml").exists():
            args = ["train", "--resume", d, "--quiet"]
        else:
            args = ["train", "--config", cfg, "--out", d, "--quiet", "--force"]
        if kills >= 20:
            r = attnlab(*args)
            assert r.returncode == 0, r.stderr
            continue
        p = start(*args)
        time.sleep(rng.uniform(0.0, full / 4))
        p.send_signal(signal.SIGKILL)
        _, err = p.communicate(timeout=30)
        if p.returncode == -signal.SIGKILL:
            kills += 1
        else:
            assert p.returncode == 0, f"exit {p.returncode}: {err}"
    assert_same_run(d, ref)


def test_two_writers_on_one_run_folder(tmp_path):
    long_cfg = tiny_config(tmp_path, steps=10_000_000, eval_every=0, ckpt=50, name="long.toml")
    d = tmp_path / "run"
    a = start("train", "--config", long_cfg, "--out", d, "--quiet")
    try:
        wait_for(lambda: lock_pid(d) == a.pid, what="the first writer's lock")
        wait_for(lambda: (d / "model.safetensors").exists(), what="a first checkpoint")
        tiny = tiny_config(tmp_path)
        for args in (["--config", tiny, "--out", d, "--force"], ["--resume", d],
                     ["--resume", d, "--set", "train.steps=20000000"]):
            r = attnlab("train", *args, "--quiet")
            assert r.returncode == 2, r.stderr
            assert f"run folder '{d}' is in use by process {a.pid}" in r.stderr, r.stderr
        assert "steps = 10000000" in (d / "config.toml").read_text()  # untouched
        assert a.poll() is None
    finally:
        a.kill()
        a.wait()
    # The kernel dropped the lock with the process: the folder is usable again.
    r = attnlab("train", "--resume", d, "--quiet", "--stop-after", "60")
    assert r.returncode == 0, r.stderr


GRID = """
[base.model]
layers = 1
dim = 16
heads = 2
[base.task]
name = "iarc"
[base.train]
steps = {steps}
batch = 4
context = 16
warmup = 2
eval_every = 0
eval_windows = 16
log_every = 10
checkpoint_every = 10
[grid]
"train.seed" = {seeds}
"""


def grid(tmp, steps, seeds, name):
    path = tmp / name
    path.write_text(GRID.format(steps=steps, seeds=seeds))
    return path


def test_two_sweeps_on_one_folder(tmp_path):
    g1 = grid(tmp_path, 10_000_000, "[1]", "g1.toml")
    g2 = grid(tmp_path, 20, "[1, 2]", "g2.toml")
    s = tmp_path / "sweep"
    first = start("sweep", "--grid", g1, "--out", s, "--jobs", "1")
    try:
        wait_for(lambda: lock_pid(s) == first.pid, what="the first sweep's lock")
        r = attnlab("sweep", "--grid", g2, "--out", s, "--jobs", "1")
        assert r.returncode == 2, r.stdout + r.stderr
        assert f"sweep folder '{s}' is in use by process {first.pid}" in r.stderr, r.stderr
        assert "steps = 10000000" in (s / "grid.toml").read_text()
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)


def test_sweep_sigkill_leaves_no_orphan(tmp_path):
    g = grid(tmp_path, 10_000_000, "[1]", "g.toml")  # runs until stopped
    s = tmp_path / "sweep"
    sweep = start("sweep", "--grid", g, "--out", s, "--jobs", "1")
    run = s / "run"
    child = 0

    def run_started(parent, old=0):
        nonlocal child
        child = lock_pid(run)
        return child not in (0, parent, old) and alive(child) and \
            (run / "model.safetensors").exists()

    try:
        wait_for(lambda: run_started(sweep.pid), what="the sweep's first checkpoint")
    finally:
        sweep.send_signal(signal.SIGKILL)
        sweep.wait()
    first_child = child
    wait_for(lambda: not alive(first_child), timeout=5, what=f"run {first_child} to die")
    # A rerun resumes the interrupted run (one writer at a time); SIGTERM stops it cleanly.
    rerun = start("sweep", "--grid", g, "--out", s, "--jobs", "1")
    try:
        wait_for(lambda: run_started(rerun.pid, first_child) and
                 "resuming" in (run / "train.log").read_text(), what="the rerun to resume")
    finally:
        rerun.send_signal(signal.SIGTERM)
        _, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 2 and "interrupted" in err, err
    assert not alive(child)


def test_hostile_command_lines_exit_2_with_one_error_line(tmp_path, reference):
    _, run = reference
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    corrupt = tmp_path / "corrupt"
    subprocess.run(["cp", "-a", str(run), str(corrupt)], check=True)
    metrics = corrupt / "metrics.csv"
    lines = metrics.read_text().splitlines()
    lines[1] = "1e999" + lines[1][lines[1].index(","):]
    metrics.write_text("\n".join(lines) + "\n")
    cases = [
        (["train", "--bogus"], "--bogus"),
        (["train", "--stop-after", "many"], "many"),
        (["eval", "--run", run, "--windows", "0"], "--windows = 0 is out of range"),
        (["eval", "--run", run, "--windows", "-1"], "--windows = -1 is out of range"),
        (["eval", "--run", run, "--windows", "2147483647"], "--windows = 2147483647 is out of range"),
        (["eval", "--run", "x" * 5000], "characters ...]xxxxxxxxxx"),
        (["train", "--config", "/dev/zero", "--out", tmp_path / "z"], "not a regular file"),
        (["train", "--config", fifo, "--out", tmp_path / "f"], "not a regular file"),
        (["sweep", "--grid", "/dev/zero", "--out", tmp_path / "s"], "not a regular file"),
        (["train", "--recipe", "ladder-quick", "--set", "task.name=text", "--set",
          f"task.path={fifo}", "--out", tmp_path / "t"], "not a regular file"),
        (["task", "sample", "--windows", "100000", "--context", "8192"], "at most 10000000 tokens"),
        (["train", "--resume", corrupt, "--set", "train.steps=20"], "metrics.csv' line 2: the step"),
    ]
    for args, expect in cases:
        r = attnlab(*args, timeout=30)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") or "Run with --help" in r.stderr, (args, r.stderr)
        assert r.stderr.count("error") <= 2, (args, r.stderr)  # one error line (CLI11: two)
        assert expect in r.stderr, (args, r.stderr)
        assert len(last) < 1000, (args, r.stderr)  # long paths are shortened
    r = attnlab("train", "--help")
    assert r.returncode == 0 and "--resume" in r.stdout

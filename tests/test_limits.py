"""npbigram/utils/limits.py and npbigram/preflight.py: the memory the process may really use
(the machine's, its cgroup's, its ulimits'), checked by a command's pre-flight before any work,
in training, gradcheck and reading a text; the work bounds of a run; gradcheck's progress on a
terminal."""

import resource
import subprocess
import sys

import pytest
from npbigram import TrainConfig
from npbigram.data import corpus
from npbigram.utils import limits
from npbigram.cli import main
from npbigram.utils.limits import Available, InsufficientMemory, check_memory
from npbigram.preflight import check_training, training_memory

from helpers import save_trainer, terminal_output, trained_trainer

GB = 10**9


@pytest.fixture
def eight_gb(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: Available(8 * GB))


def fake_proc(root, meminfo_kb=20_000_000, cgroup="0::/\n", mounts=(), status=""):
    """A file tree standing in for /proc: meminfo, and self/cgroup, self/mountinfo (one line
    per (fstype, mount root, mount point, options)), self/status."""
    proc = root / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text(f"MemTotal: 99999999 kB\nMemAvailable: {meminfo_kb} kB\n")
    (proc / "self" / "cgroup").write_text(cgroup)
    (proc / "self" / "mountinfo").write_text("".join(
        f"{30 + k} 23 0:{40 + k} {mount_root} {point} rw,relatime shared:9 - {fstype} {fstype} "
        f"{options}\n" for k, (fstype, mount_root, point, options) in enumerate(mounts)))
    (proc / "self" / "status").write_text(status)
    return proc


def cgroup_files(directory, **files):
    """Write a cgroup's files: memory_max="2000000000" writes memory.max."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name.replace("_", ".", 1)).write_text(text + "\n")


def test_the_machine_memory_is_mem_available(tmp_path):
    proc = fake_proc(tmp_path, meminfo_kb=3_000_000)
    assert limits.available_memory(proc) == Available(3_000_000 * 1024)
    assert str(limits.available_memory(proc)) == "the 3.0 GB available"  # rounded down


def test_a_cgroup_v2_limit_leaves_its_limit_minus_what_it_uses(tmp_path):
    """The process's own cgroup (0::/path) under the cgroup2 mount; its usage counts the
    page cache the kernel reclaims first (inactive_file) as free."""
    mount = tmp_path / "cgroup"
    job = mount / "user.slice" / "job"
    cgroup_files(job, memory_max="2000000000", memory_current="300000000",
                 memory_stat="anon 100000000\ninactive_file 200000000")
    cgroup_files(mount / "user.slice", memory_max="max", memory_current="900000000")
    proc = fake_proc(tmp_path, cgroup="0::/user.slice/job\n",
                     mounts=[("cgroup2", "/", mount, "rw")])
    assert limits.available_memory(proc) == Available(
        1_900_000_000, f"the cgroup memory limit (memory.max of {job}, 2.0 GB)")


def test_a_parent_cgroup_limit_binds_too(tmp_path):
    mount = tmp_path / "cgroup"
    cgroup_files(mount / "a" / "b", memory_max="max", memory_current="100")
    cgroup_files(mount / "a", memory_max="1000000000", memory_current="600000000")
    proc = fake_proc(tmp_path, cgroup="0::/a/b\n", mounts=[("cgroup2", "/", mount, "rw")])
    available = limits.available_memory(proc)
    assert available.bytes == 400_000_000 and f"memory.max of {mount / 'a'}," in available.limit


def test_cgroup_v1_memory_controller_seen_through_its_mount_root(tmp_path):
    """cgroup v1 (here: memory.limit_in_bytes): the memory line of /proc/self/cgroup, the
    path relative to the mount's root (a container sees its own cgroup at the mount point);
    "no limit" is about 2^63."""
    mount = tmp_path / "memory"
    cgroup_files(mount, memory_limit_in_bytes="3000000000", memory_usage_in_bytes="1000000000",
                 memory_stat="cache 5\ntotal_inactive_file 0")
    cgroups = "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n"
    mounts = [("cgroup", "/docker/abc", tmp_path / "cpu", "rw,cpu,cpuacct"),
              ("cgroup", "/docker/abc", mount, "rw,memory")]
    proc = fake_proc(tmp_path, cgroup=cgroups, mounts=mounts)
    assert limits.available_memory(proc) == Available(
        2_000_000_000, f"the cgroup memory limit (memory.limit_in_bytes of {mount}, 3.0 GB)")
    (mount / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert limits.available_memory(proc) == Available(20_000_000 * 1024)


def test_ulimits_leave_their_limit_minus_what_the_process_maps(tmp_path, monkeypatch):
    limit = {resource.RLIMIT_AS: 4 * GB, resource.RLIMIT_DATA: 3 * GB}
    monkeypatch.setattr(resource, "getrlimit",
                        lambda which: (limit.get(which, resource.RLIM_INFINITY),
                                       resource.RLIM_INFINITY))
    proc = fake_proc(tmp_path, status="VmSize:\t 1000000 kB\nVmData:\t 2500000 kB\n")
    assert limits.memory_limits(proc)[1:] == [
        Available(4 * GB - 1_024_000_000, "the address-space limit (ulimit -v, 4.0 GB)"),
        Available(3 * GB - 2_560_000_000, "the data-segment limit (ulimit -d, 3.0 GB)")]
    assert str(limits.available_memory(proc)) == ("the 0.4 GB that the data-segment limit "
                                                  "(ulimit -d, 3.0 GB) leaves")


def test_the_refusal_names_the_limit_that_refuses(tmp_path, monkeypatch):
    mount = tmp_path / "cgroup"
    cgroup_files(mount / "x", memory_max="2000000000", memory_current="100000000")
    monkeypatch.setattr(limits, "PROC", fake_proc(tmp_path, cgroup="0::/x\n",
                                                  mounts=[("cgroup2", "/", mount, "rw")]))
    with pytest.raises(InsufficientMemory) as failure:
        check_memory("a job", [("a batch", 3 * GB, "lower --batch-size")])
    assert str(failure.value) == (
        f"a job needs about 3.0 GB of memory (a batch: 3.0 GB), more than the 1.9 GB that the "
        f"cgroup memory limit (memory.max of {mount / 'x'}, 2.0 GB) leaves: lower --batch-size")


def under_ulimit_v(kilobytes, *argv, cwd):
    """Run `npbigram argv` under `ulimit -v kilobytes`, as a shell would (a preexec_fn could
    deadlock the fork of a process that runs threads)."""
    command = f'ulimit -v {kilobytes} && exec "$0" -m npbigram "$@"'
    return subprocess.run(["sh", "-c", command, sys.executable, *map(str, argv)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_a_real_address_space_limit_refuses_a_huge_batch_at_once(tinyshakespeare, tmp_path):
    """Under ulimit -v 16000000, a batch whose window starts alone take about 19 GB must not pass
    the check of the machine's free memory and run for minutes."""
    done = under_ulimit_v(16_000_000, "train", "--data", tinyshakespeare, "--batch-size",
                          "1200000000", cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == "" and not (tmp_path / "ckpt.npz").exists()
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("npbigram: error: training needs about ")
    assert "that the address-space limit (ulimit -v, 16.4 GB) leaves: lower --batch-size" \
        in done.stderr


def test_small_runs_pass_under_a_tight_address_space_limit(tinyshakespeare, tmp_path):
    """numba and LLVM map hundreds of MB of address space before the check; a run that fits
    is not refused."""
    done = under_ulimit_v(1_500_000, "train", "--data", tinyshakespeare, "--max-iters", "300",
                          "--sample-tokens", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_check_memory_names_the_largest_part_and_what_to_change(eight_gb):
    check_memory("a job", [("small", 1 * GB, "nothing")])
    with pytest.raises(InsufficientMemory) as failure:
        check_memory("a job", [("weights", 2 * GB, "fewer tokens"), ("a batch", 7 * GB,
                                                                       "lower --batch-size")])
    assert str(failure.value) == ("a job needs about 9.0 GB of memory (a batch: 7.0 GB), more "
                                  "than the 8.0 GB available: lower --batch-size")


def test_unknown_available_memory_checks_nothing(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: None)
    check_memory("a job", [("everything", 10**15, "less")])


def test_available_memory_is_known_here():
    assert limits.available_memory().bytes > 0


def test_a_huge_batch_is_refused_before_any_work(tinyshakespeare, tmp_path, capsys, eight_gb):
    """A batch too large for memory must be refused before any work, not killed by the kernel
    without a message."""
    out = tmp_path / "ckpt.npz"
    assert main(["train", "--data", str(tinyshakespeare), "--batch-size", "600000000",
                 "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and not out.exists()
    assert captured.err.startswith("npbigram: error: training needs about ")
    assert captured.err.endswith(" GB of memory (training steps on batches of 4,800,000,000 "
                                 "positions: 9.6 GB), more than the 8.0 GB available: lower "
                                 "--batch-size or --block-size\n")


def test_the_estimate_covers_the_model_a_chunk_and_an_evaluation():
    config = TrainConfig(batch_size=4096, block_size=256, eval_iters=200)
    model, steps, largest = training_memory(config, 4096)
    assert model[1] == 4 * 4 * 4096**2  # float32 weights, gradient, AdamW's two moments
    assert steps[0] == "training steps on batches of 1,048,576 positions"
    assert largest[0] == "the pair counts of the splits"
    assert largest[1] > 5 * 8 * 4096**2
    assert training_memory(config, 65)[1][0] == "training steps on batches of 1,048,576 positions"
    reference = training_memory(TrainConfig(batch_size=4096, block_size=256, backend="numpy"),
                                4096)[1]
    assert reference[1] > 6 * 4 * 4096 * 2**20  # the NumPy engine holds (N,V) logits


def test_the_step_batch_arrays_count_beside_an_evaluation():
    """The engine keeps a step's batch arrays between calls (gather/scatter's targets grouped by
    row), so an evaluation after the first step, and the pair counts at the end, come on top of
    them."""
    config = TrainConfig(batch_size=100_000, block_size=256, eval_iters=20_000_000,
                         grad="gather-scatter")
    parts = dict((what, size) for what, size, _ in training_memory(config, 65))
    step = parts["training steps on batches of 25,600,000 positions"]
    evaluation = parts["evaluating 20,000,000 batches of 25,600,000 positions"]
    assert step >= 8 * 25_600_000 and evaluation >= 8 * 20_000_000 + 8 * 100_000
    full_batch = TrainConfig(full_batch=True, eval="exact")
    model, largest = training_memory(full_batch, 4096)  # no batches
    assert largest[0] == "the pair counts of the splits"


def test_the_preflight_of_a_run_refuses(eight_gb):
    with pytest.raises(InsufficientMemory, match="lower --eval-iters"):
        check_training(TrainConfig(eval_iters=10**10), 2)


def test_a_model_too_large_for_memory_is_refused_before_allocating(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: Available(10**9))
    with pytest.raises(InsufficientMemory) as failure:
        check_training(TrainConfig(), 20_000)
    assert str(failure.value) == (
        "training needs about 35.3 GB of memory (the pair counts of the splits: 28.8 GB), more "
        "than the 1.0 GB available: use a text with fewer distinct tokens (this one has 20,000)")
    assert training_memory(TrainConfig(), 20_000)[0][:2] == (
        "the 20,000x20,000 weights, gradient and optimizer state", 4 * 4 * 20_000 ** 2)


@pytest.mark.parametrize("argv, message", [
    (["--vocab", "100000"], "GB of memory (the 100,000x100,000 table, gradients and errors: "
                            "640.0 GB), more than the 8.0 GB available: lower --vocab (or use a "
                            "text with fewer characters)"),
    (["--vocab", "2000", "--batch-size", "10000", "--block-size", "64"],
     "lower --batch-size or --block-size"),
])
def test_gradcheck_too_large_for_memory_is_refused(capsys, eight_gb, argv, message):
    """gradcheck --vocab 100000 printed numpy's _ArrayMemoryError
    traceback."""
    assert main(["gradcheck", *argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("npbigram: error: ")
    assert message in captured.err


def test_gradcheck_shows_its_progress_on_a_terminal(tmp_path):
    """gradcheck --vocab 2000 --batch 64 --block 64 ran over 20 s with no
    progress shown."""
    shown = terminal_output(["gradcheck", "--vocab", "300", "--batch-size", "16",
                             "--block-size", "16"],
                            b"entry", cwd=tmp_path)
    assert b"gradcheck:" in shown and b"/90.0k" in shown


@pytest.mark.parametrize("argv", [
    ["optimum", "--data", "{big}"],
    ["optimum", "--data", "{big}", "--tokenizer", "byte"],
    ["train", "--data", "{big}"],
    ["eval", "--checkpoint", "{checkpoint}", "--data", "{big}"],
    ["heatmap", "--checkpoint", "{checkpoint}", "--out", "heat.png", "--data", "{big}"],
])
def test_a_text_too_large_for_memory_is_refused_before_it_is_read(tmp_path, monkeypatch,
                                                                  capsys, argv):
    """eval, optimum and train --data on a 278 MB text peaked at 8.5 GB, and under a limit
    failed with numpy's 'Unable to allocate 2.08 GiB', no hint. (A sparse file: no disk.)"""
    monkeypatch.chdir(tmp_path)
    big, checkpoint = tmp_path / "big.txt", tmp_path / "model.npz"
    with open(big, "wb") as f:
        f.truncate(200_000_000)
    save_trainer(checkpoint, trained_trainer("numpy", steps=1))  # a char model

    def unread(path):
        raise AssertionError(f"{path} was read")

    monkeypatch.setattr(corpus, "read_bytes", unread)
    monkeypatch.setattr(limits, "available_memory", lambda: Available(1 * GB))
    assert main([word.format(big=big, checkpoint=checkpoint) for word in argv]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    per_byte = 9 if "byte" in argv else 13
    assert captured.err.startswith(
        f"npbigram: error: reading {big} needs about {per_byte * 0.2:.1f} GB of memory (its "
        f"200,000,000 bytes as text and int64 token ids: {per_byte * 0.2:.1f} GB), more than "
        f"the 1.0 GB available: prepare it once with `npbigram prepare --data {big} --out "
        f"DIR`, which reads it in bounded memory, then pass --data DIR")


@pytest.mark.slow
def test_reading_a_text_takes_what_the_estimate_says(tmp_path):
    """The peak of `optimum --data FILE` (reading, tokenizing, counting) stays within the
    estimate of the text (13 bytes a byte for char) beside the interpreter's own memory."""
    text = tmp_path / "big.txt"
    text.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 400_000)
    script = ("import resource, sys; from npbigram.cli import main; "
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
              "main(['optimum', '--data', sys.argv[1]]); "
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)")
    done = subprocess.run([sys.executable, "-c", script, str(text)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    peak = int(done.stdout.splitlines()[-1]) * 1024
    assert peak < 13 * text.stat().st_size


def test_an_evaluation_of_more_than_1e10_positions_is_refused(tinyshakespeare, tmp_path,
                                                              monkeypatch, capsys):
    """train --eval-iters 20000000 showed `train: 0%| | 0/3000` for minutes: one estimate of
    2 x 20,000,000 x 32 x 8 positions."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", str(tinyshakespeare), "--eval-iters", "20000000"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        "npbigram: error: one evaluation would read 10,240,000,000 positions (2 splits x "
        "--eval-iters 20,000,000 x 32 x 8), more than 10,000,000,000: minutes of work at every "
        "--eval-interval; lower --eval-iters, or use --eval exact (every pair, in O(V^2))\n")


def test_a_step_of_too_much_work_is_warned_of_with_the_faster_gradient():
    config = TrainConfig(batch_size=4096, block_size=1024, eval="exact", grad="gather-scatter")
    with pytest.warns(UserWarning, match=r"each training step computes about 1\.72e\+10 "
                                         r"entries .*: --grad pair-counts computes the same"):
        check_training(config, 4096)

"""Nothing half-written (issue 13, requirement 5, and the output part of 4).

Every writer is driven into a REAL write failure, on the real command line:
a file-size limit (RLIMIT_FSIZE in a child `cosim` process, SIGXFSZ ignored,
so the write gets EFBIG) and a full disk (a small tmpfs, filled up to a few
pages, so the write gets ENOSPC part-way). Each ends with exit status 2 and
one `cosim: error:` line naming the target, no traceback, no file at the
target and no `.partial-` temporary anywhere under its directory. A
read-only file system (a tmpfs remounted read-only: root ignores chmod) and
an output that names an existing directory are refused before any work,
in one line.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cosim.cli import main
from cosim.core.atomic import PARTIAL, atomic_dir, atomic_path, atomic_write_text, write_error
from cosim.core.errors import InputError

NGSPICE = pytest.mark.skipif(not shutil.which("ngspice"), reason="ngspice is not installed")
FULL = "No space left on device"
TOO_LARGE = "File too large"
READ_ONLY = "Read-only file system"


# --- running cosim ---------------------------------------------------------------------------

def cosim_child(*args, fsize: int, timeout: float = 300) -> tuple[int, str, str]:
    """The real `cosim` CLI in a child process whose files may not grow past `fsize` bytes."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so the write fails with EFBIG instead of killing

    run = subprocess.run([sys.executable, "-m", "cosim", *map(str, args)], capture_output=True, text=True,
                         timeout=timeout, preexec_fn=limit)
    return run.returncode, run.stdout, run.stderr


def cosim_here(capsys, *args) -> tuple[int, str, str]:
    """`cosim` in this process (cosim.cli.main: any exception that escapes it fails the test)."""
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def partials(directory: Path) -> list[Path]:
    """Every temporary (`.NAME.partial-...`) under `directory`."""
    return [p for p in Path(directory).rglob("*") if PARTIAL in p.name]


def assert_one_line_failure(result: tuple[int, str, str], target: Path, *words: str) -> str:
    """Exit 2, exactly one `cosim: error:` line (the last one) holding `words`,
    no traceback, nothing at `target`, no temporary beside it."""
    rc, out, err = result
    assert rc == 2, f"exit {rc}\n{out}\n{err}"
    assert "Traceback" not in err and "Exception ignored" not in err and "HDF5-DIAG" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("cosim: error:")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    for word in words:
        assert word in errors[0], errors[0]
    assert not target.exists(), f"{target} was left behind"
    assert not partials(target.parent), partials(target.parent)
    return errors[0]


# --- the inputs every case writes from -------------------------------------------------------

@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """Layer, data, tile and run files (written once, on a normal disk)."""
    root = tmp_path_factory.mktemp("inputs")
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(64, 64), root / "lin64.pt")  # RUN.h5 ~100 kB, checkpoints ~5 kB
    torch.save(torch.nn.Linear(8, 3), root / "clf.pt")
    torch.save(torch.rand(40, 8) * 2 - 1, root / "x.pt")
    torch.save(torch.randint(0, 3, (40,)), root / "y.pt")
    rng = np.random.default_rng(0)
    np.save(root / "g32.npy", 1 / rng.uniform(1e3, 1e4, (32, 32)))  # RESULT.h5 ~20 kB
    np.save(root / "v32.npy", rng.uniform(-0.3, 0.3, (4, 32)))
    np.save(root / "g2.npy", np.full((2, 2), 1e-3))
    np.save(root / "v2.npy", np.array([0.1, 0.2]))
    assert main(["simulate", str(root / "lin64.pt"), "--tile", "64", "--batch", "4", "--engine", "ideal",
                 "--quiet", "--out", str(root / "run.h5")]) == 0
    if shutil.which("ngspice"):
        assert main(["tile", "--conductance", str(root / "g2.npy"), "--voltage", str(root / "v2.npy"),
                     "--transient", "--out", str(root / "tr.h5")]) == 0
    return root


def simulate_args(work: Path, out: Path, batch: int = 4) -> list:
    """RUN.h5 ~100 kB; two checkpoints of ~5 kB (batch 4) or ~66 kB (batch 64)."""
    return ["simulate", work / "lin64.pt", "--tile", "64", "--batch", batch, "--engine", "ideal", "--quiet",
            "--out", out]


def tile_args(work: Path, out: Path) -> list:
    return ["tile", "--conductance", work / "g32.npy", "--voltage", work / "v32.npy", "--engine", "ideal",
            "--out", out]


def waves_args(work: Path, out: Path) -> list:
    return ["waves", work / "tr.h5", "--signal", "col*.vout", "row*.v_near", "-o", out]


def netlist_args(work: Path, out: Path, tile: str = "32") -> list:
    return ["netlist", "--conductance", work / f"g{tile}.npy", "--voltage", work / f"v{tile}.npy", "--access",
            "nmos", "--out-dir", out]


def sweep_args(work: Path, out_dir: Path) -> list:
    return ["sweep", work / "clf.pt", "--data", work / "x.pt", "--labels", work / "y.pt", "--param",
            "stuck_at_rate=0", "--draws", "1", "--engine", "ideal", "--tile", "8", "--out-dir", out_dir,
            "--name", "s"]


# --- a small disk ----------------------------------------------------------------------------

class Disk:
    """A 256 kB tmpfs; `fill(leave)` leaves only `leave` bytes free."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def free(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int) -> None:
        with open(self.path / "filler", "wb") as handle:
            handle.write(b"\0" * max(0, self.free() - leave))
        assert self.free() <= leave


def _mount(where: Path, options: str) -> None:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({(done.stderr or 'mount failed').strip()}); "
                    "the full-disk and read-only cases need root (CAP_SYS_ADMIN)")


def _umount(where: Path) -> None:
    if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture
def disk(tmp_path):
    where = tmp_path / "disk"
    _mount(where, "size=256k")
    yield Disk(where)
    _umount(where)


@pytest.fixture
def read_only(tmp_path):
    """A tmpfs remounted read-only (with one file on it, so reads still work)."""
    where = tmp_path / "ro"
    _mount(where, "size=64k")
    (where / "existing.txt").write_text("was here\n")
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
    yield where
    _umount(where)


# --- RUN.h5, RESULT.h5, checkpoints ----------------------------------------------------------

def test_simulate_run_h5_over_the_file_size_limit_leaves_no_file_and_no_temporary(work, tmp_path):
    out = tmp_path / "run.h5"
    line = assert_one_line_failure(cosim_child(*simulate_args(work, out), fsize=30_000), out, TOO_LARGE)
    assert str(out) in line


def test_simulate_run_h5_on_a_full_disk_leaves_no_file_and_no_temporary(work, disk, capsys):
    disk.fill(leave=48 * 1024)  # the ~5 kB checkpoints fit, the ~100 kB RUN.h5 does not
    out = disk.path / "run.h5"
    line = assert_one_line_failure(cosim_here(capsys, *simulate_args(work, out)), out, FULL)
    assert f"cannot write {out}:" in line


def test_checkpoint_npz_over_the_file_size_limit_ends_the_run_in_one_line(work, tmp_path):
    out = tmp_path / "run.h5"
    assert_one_line_failure(cosim_child(*simulate_args(work, out), fsize=2_000), out, TOO_LARGE, ".npz")
    assert not list((tmp_path / "run.h5.partial").glob("*.npz"))  # no truncated checkpoint either


def test_checkpoint_npz_on_a_full_disk_ends_the_run_in_one_line(work, disk, capsys):
    disk.fill(leave=32 * 1024)  # the checkpoint directory (marker, lock) fits, a ~66 kB checkpoint does not
    out = disk.path / "run.h5"
    assert_one_line_failure(cosim_here(capsys, *simulate_args(work, out, batch=64)), out, FULL, ".npz")
    assert not list((disk.path / "run.h5.partial").glob("*.npz"))


def test_tile_result_h5_over_the_file_size_limit_leaves_nothing(work, tmp_path):
    out = tmp_path / "result.h5"
    assert_one_line_failure(cosim_child(*tile_args(work, out), fsize=8_000), out, TOO_LARGE)


def test_tile_result_h5_on_a_full_disk_leaves_nothing(work, disk, capsys):
    disk.fill(leave=4096)
    out = disk.path / "result.h5"
    assert_one_line_failure(cosim_here(capsys, *tile_args(work, out)), out, FULL)


def test_evaluate_run_h5_over_the_file_size_limit_leaves_nothing(work, tmp_path):
    out = tmp_path / "eval.h5"
    result = cosim_child("evaluate", work / "clf.pt", "--data", f"{work / 'x.pt'},{work / 'y.pt'}",
                         "--engine", "ideal", "--tile", "8", "--quiet", "--out", out, fsize=4_000)
    assert_one_line_failure(result, out, TOO_LARGE)


def test_hdf5_on_a_full_disk_is_one_line_and_a_failing_block_leaves_no_temporary(disk):
    """h5py's own ENOSPC message spans lines; write_error makes it one. atomic_h5
    builds the file in memory, so a block that raises leaves nothing at all."""
    import h5py

    from cosim.results.store import atomic_h5

    disk.fill(leave=0)
    with pytest.raises(OSError) as caught:
        h5py.File(disk.path / "direct.h5", "w").close()
    message = str(write_error(disk.path / "x.h5", caught.value))
    assert "\n" not in message and FULL in message
    (disk.path / "direct.h5").unlink(missing_ok=True)
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_h5(disk.path / "x.h5") as h5:
            h5.create_dataset("a", data=np.zeros(1000))
            raise RuntimeError("boom")
    assert not (disk.path / "x.h5").exists() and not partials(disk.path)


# --- report, waves, netlist directories ------------------------------------------------------

@NGSPICE
def test_report_html_over_the_file_size_limit_leaves_nothing(work, tmp_path):
    out = tmp_path / "report.html"  # ~150 kB page
    assert_one_line_failure(cosim_child("report", work / "run.h5", "-o", out, fsize=60_000), out, TOO_LARGE)


@NGSPICE
def test_report_html_on_a_full_disk_leaves_nothing(work, disk, capsys):
    disk.fill(leave=16 * 1024)
    out = disk.path / "report.html"
    assert_one_line_failure(cosim_here(capsys, "report", work / "run.h5", "-o", out), out, FULL)


@NGSPICE
@pytest.mark.parametrize("suffix", [".png", ".html", ".csv"])
def test_waves_output_over_the_file_size_limit_leaves_nothing(work, tmp_path, suffix):
    out = tmp_path / f"w{suffix}"  # csv ~13 kB, png ~30 kB, html ~5 MB
    assert_one_line_failure(cosim_child(*waves_args(work, out), fsize=4_000), out, TOO_LARGE)


@NGSPICE
@pytest.mark.parametrize("suffix", [".png", ".html", ".csv"])
def test_waves_output_on_a_full_disk_leaves_nothing(work, disk, capsys, suffix):
    disk.fill(leave=4096)
    out = disk.path / f"w{suffix}"
    assert_one_line_failure(cosim_here(capsys, *waves_args(work, out)), out, FULL)


def test_netlist_directory_over_the_file_size_limit_leaves_no_directory(work, tmp_path):
    out = tmp_path / "net"  # tile.cir of a 32x32 1T1R tile: ~150 kB
    assert_one_line_failure(cosim_child(*netlist_args(work, out), fsize=20_000), out, TOO_LARGE)


def test_netlist_directory_on_a_full_disk_leaves_no_directory(work, disk, capsys):
    disk.fill(leave=8192)
    out = disk.path / "net"
    assert_one_line_failure(cosim_here(capsys, *netlist_args(work, out)), out, FULL)


def test_netlist_rewrite_replaces_a_netlist_directory_but_never_a_users(work, tmp_path, capsys):
    out = tmp_path / "net"
    assert cosim_here(capsys, *netlist_args(work, out, "2"))[0] == 0
    (out / "tile.raw").write_text("ngspice output\n")  # what `ngspice -b tile.cir` adds
    assert cosim_here(capsys, *netlist_args(work, out, "2"), "--mode", "tran")[0] == 0
    assert (out / "vteam.lib").is_file() and not (out / "tile.raw").exists()
    assert not (out / ".cosim-owned").exists()  # netlist directories carry no marker (goldens stay as they are)
    (out / "notes.txt").write_text("mine\n")
    rc, _, err = cosim_here(capsys, *netlist_args(work, out, "2"))
    assert rc == 2 and "holds files cosim did not write" in err
    assert (out / "notes.txt").read_text() == "mine\n" and (out / "vteam.lib").is_file()
    assert not partials(tmp_path)


def test_golden_regeneration_rewrites_a_copy_of_the_committed_goldens_unchanged(tmp_path):
    from cosim.spice.goldens import golden_cases, write_golden_netlists

    golden = Path(__file__).resolve().parent.parent / "netlists"
    copy = tmp_path / "netlists"
    shutil.copytree(golden, copy)
    write_golden_netlists(copy)
    for name in golden_cases():
        committed = sorted(p.name for p in (golden / name).iterdir() if p.suffix != ".raw")
        assert sorted(p.name for p in (copy / name).iterdir()) == committed
        for file in committed:
            assert (copy / name / file).read_text() == (golden / name / file).read_text()
    assert not partials(copy)


# --- checkpoint-free writers: calibration, sweep, validate, spotcheck, examples -------------

@NGSPICE
def test_calibration_json_on_a_full_disk_leaves_nothing(disk, capsys):
    disk.fill(leave=0)
    out = disk.path / "cal.json"
    assert_one_line_failure(cosim_here(capsys, "calibrate", "--devices", "3", "--out", out), out, FULL)


def test_sweep_outputs_over_the_file_size_limit_leave_none_of_the_three(work, tmp_path):
    out_dir = tmp_path / "sweep"  # md and csv are tiny, the png ~35 kB: all three or none
    assert_one_line_failure(cosim_child(*sweep_args(work, out_dir), fsize=10_000), out_dir / "s.png", TOO_LARGE)
    assert sorted(p.name for p in out_dir.iterdir()) == []


def test_sweep_outputs_on_a_full_disk_leave_none_of_the_three(work, disk, capsys):
    disk.fill(leave=8192)
    out_dir = disk.path / "sweep"
    assert_one_line_failure(cosim_here(capsys, *sweep_args(work, out_dir)), out_dir / "s.png", FULL)
    assert sorted(p.name for p in out_dir.iterdir()) == []


@NGSPICE
def test_validate_markdown_and_json_on_a_full_disk_leave_neither(disk, capsys):
    disk.fill(leave=0)
    result = cosim_here(capsys, "validate", "--sizes", "2", "--access", "none", "--batch", "1", "--vacask", "no",
                        "--out-dir", disk.path)
    assert_one_line_failure(result, disk.path / "validation.md", FULL)
    assert not (disk.path / "validation.json").exists()


@NGSPICE
def test_spotcheck_plot_and_json_on_a_full_disk_leave_nothing(disk, capsys):
    disk.fill(leave=0)
    plot, report = disk.path / "spot.png", disk.path / "spot.json"
    result = cosim_here(capsys, "spotcheck", "--k", "1", "--size", "4", "--batch", "1", "--plot", plot,
                        "--json", report)
    assert_one_line_failure(result, plot, FULL)
    assert not report.exists()


@NGSPICE
def test_spotcheck_plot_over_the_file_size_limit_leaves_nothing(tmp_path):
    plot, report = tmp_path / "spot.png", tmp_path / "spot.json"  # png ~55 kB; ngspice's files stay below
    result = cosim_child("spotcheck", "--k", "1", "--size", "4", "--batch", "1", "--plot", plot, "--json", report,
                         fsize=20_000)
    assert_one_line_failure(result, plot, TOO_LARGE)
    assert not report.exists()


@NGSPICE
def test_a_simulator_run_directory_that_cannot_be_written_is_one_line(tmp_path):
    """Below the size of the netlist itself: ngspice's scratch tile.cir fails, in one line, not a traceback."""
    out = tmp_path / "spot.json"
    result = cosim_child("spotcheck", "--k", "1", "--size", "4", "--batch", "1", "--json", out, fsize=1_000)
    assert_one_line_failure(result, out, TOO_LARGE, "tile.cir")


def test_example_files_on_a_full_disk_leave_nothing(disk, capsys):
    disk.fill(leave=0)
    result = cosim_here(capsys, "example", "tile4", "--out-dir", disk.path)
    assert_one_line_failure(result, disk.path / "G.npy", FULL)
    assert not (disk.path / "V.npy").exists()


# --- read-only file systems ------------------------------------------------------------------

@pytest.mark.parametrize("case", ["simulate", "tile", "netlist", "sweep", "report", "calibrate", "example"])
def test_read_only_directory_is_refused_in_one_line_before_any_work(work, read_only, capsys, case):
    target = {"simulate": read_only / "run.h5", "tile": read_only / "r.h5", "netlist": read_only / "net",
              "sweep": read_only / "s.md", "report": read_only / "r.html", "calibrate": read_only / "cal.json",
              "example": read_only / "G.npy"}[case]
    args = {"simulate": simulate_args(work, target), "tile": tile_args(work, target),
            "netlist": netlist_args(work, target), "sweep": sweep_args(work, read_only),
            "report": ["report", work / "run.h5", "-o", target],
            "calibrate": ["calibrate", "--devices", "3", "--out", target],
            "example": ["example", "tile4", "--out-dir", read_only]}[case]
    rc, out, err = cosim_here(capsys, *args)
    assert_one_line_failure((rc, out, err), target, READ_ONLY)
    assert out == ""  # refused before anything ran
    assert sorted(p.name for p in read_only.iterdir()) == ["existing.txt"]


def test_a_late_write_into_a_read_only_directory_is_one_line_and_leaves_nothing(read_only):
    """Past the up-front check (check=False): the create itself fails with EROFS."""
    with pytest.raises(InputError, match=READ_ONLY) as caught:
        atomic_write_text(read_only / "late.txt", "text", check=False)
    assert "\n" not in str(caught.value)
    with pytest.raises(InputError, match=READ_ONLY):
        with atomic_path(read_only / "late.npy", check=False) as tmp:
            np.save(tmp, np.zeros(3))
    with pytest.raises(InputError, match=READ_ONLY):
        with atomic_dir(read_only / "d"):
            pass
    assert sorted(p.name for p in read_only.iterdir()) == ["existing.txt"]


# --- an output that names an existing directory ----------------------------------------------

@pytest.mark.parametrize("case", ["simulate", "evaluate", "tile", "report", "waves", "calibrate",
                                  "spotcheck", "sweep", "validate"])
def test_output_naming_an_existing_directory_is_refused_before_any_work(work, tmp_path, capsys, case):
    target = tmp_path / {"simulate": "run.h5", "evaluate": "eval.h5", "tile": "r.h5", "report": "r.html",
                         "waves": "w.png", "calibrate": "cal.json", "spotcheck": "spot.json",
                         "sweep": "s.png", "validate": "validation.md"}[case]
    target.mkdir()
    (target / "keep.txt").write_text("mine\n")
    args = {"simulate": simulate_args(work, target),
            "evaluate": ["evaluate", work / "clf.pt", "--data", f"{work / 'x.pt'},{work / 'y.pt'}",
                         "--engine", "ideal", "--tile", "8", "--out", target],
            "tile": tile_args(work, target), "report": ["report", work / "run.h5", "-o", target],
            "waves": ["waves", work / "run.h5", "--signal", "x", "-o", target],
            "calibrate": ["calibrate", "--devices", "3", "--out", target],
            "spotcheck": ["spotcheck", "--k", "1", "--size", "4", "--json", target],
            "sweep": sweep_args(work, tmp_path),
            "validate": ["validate", "--sizes", "2", "--access", "none", "--out-dir", tmp_path]}[case]
    rc, out, err = cosim_here(capsys, *args)
    assert rc == 2 and out == "", (out, err)
    assert err.count("cosim: error:") == 1 and "is a directory" in err and str(target) in err, err
    assert (target / "keep.txt").read_text() == "mine\n"
    assert not (tmp_path / f"{target.name}.partial").exists()  # no checkpoint directory: nothing ran
    assert not partials(tmp_path)


def test_netlist_out_dir_naming_a_file_or_the_current_directory_is_refused(work, tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "net"
    a_file.write_text("mine\n")
    rc, _, err = cosim_here(capsys, *netlist_args(work, a_file))
    assert rc == 2 and "a file of that name exists" in err and a_file.read_text() == "mine\n"
    monkeypatch.chdir(tmp_path)
    rc, _, err = cosim_here(capsys, *netlist_args(work, Path(".")))
    assert rc == 2 and "current directory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net"]


def test_write_error_names_the_cause_and_the_fix_in_one_line():
    for code, words in ((errno.ENOSPC, "free some space"), (errno.EFBIG, "ulimit -f"),
                        (errno.EROFS, "another file system")):
        message = str(write_error("out.h5", OSError(code, "multi\nline")))
        assert message.startswith("cannot write out.h5: ") and words in message and "\n" not in message
    wrapped = OSError("Can't write data (file write failed: errno = 28, error message = 'No space')\nmore")
    assert FULL in str(write_error("x.h5", wrapped)) and "\n" not in str(write_error("x.h5", wrapped))

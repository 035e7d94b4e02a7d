"""Training: determinism, resume after kill -9, non-finite losses, unwritable outputs, bad checkpoints."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vaeclust_tutorial import checkpoint, preset, train

from vaeclust_tutorial import losses, runtime, training
from vaeclust_tutorial.inference import evaluate
from vaeclust_tutorial.models import build_model

ROOT = Path(__file__).resolve().parent.parent


def _no_clock(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def _crash_after_epoch_1(cfg, out, splits):
    """Train ``cfg`` into ``out`` and stop it with a KeyboardInterrupt after its first epoch."""
    def crash(epoch, model, entry):
        if epoch == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(cfg, out, splits=splits, progress=False, on_epoch_end=crash)


def test_same_seed_same_numbers_and_files(tmp_path, tiny_config, mnist_small):
    a = train(tiny_config, tmp_path / "a", splits=mnist_small, progress=False)
    b = train(tiny_config, tmp_path / "b", splits=mnist_small, progress=False)
    assert _no_clock(a.history) == _no_clock(b.history)
    assert a.metrics["test"] == b.metrics["test"]
    for name in ("checkpoint.pt", "history.json", "metrics.json"):
        assert (tmp_path / "a" / name).exists()
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert set(m["test"]) == {"purity", "accuracy", "nmi", "ari", "n_samples"} and m["test"]["n_samples"] == 300
    assert m["quick"] is True and m["package_version"] and m["device"].startswith("cpu")
    c = train(preset("article-a", epochs=3, train_limit=500, test_limit=300, seed=1), splits=mnist_small,
              progress=False)
    assert _no_clock(c.history) != _no_clock(a.history)


def test_an_existing_run_is_not_overwritten(tmp_path, tiny_config, mnist_small):
    train(tiny_config, tmp_path, splits=mnist_small, progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny_config, tmp_path, splits=mnist_small, progress=False)
    other = preset("article-a", epochs=3, train_limit=500, test_limit=300, seed=5)
    with pytest.raises(checkpoint.CheckpointError, match="another configuration"):
        train(other, tmp_path, resume=True, splits=mnist_small, progress=False)


def test_a_run_resumes_only_in_its_own_precision(tmp_path, mnist_small):
    fp32 = preset("article-a", epochs=1, train_limit=500, test_limit=300, device="cpu", precision="fp32")
    train(fp32, tmp_path, splits=mnist_small, progress=False)
    bf16 = preset("article-a", epochs=3, train_limit=500, test_limit=300, device="cpu", precision="bf16")
    with pytest.raises(checkpoint.CheckpointError, match="precision"):
        train(bf16, tmp_path, resume=True, splits=mnist_small, progress=False)
    result = train(preset("article-a", epochs=2, train_limit=500, test_limit=300, device="cpu", precision="fp32"),
                   tmp_path, resume=True, splits=mnist_small, progress=False)
    assert len(result.history) == 2 and result.metrics["precision"] == "float32"


def _as_if_written_on(path, device, **changes):
    """Rewrite a checkpoint as a run on ``device`` would have left it (no GPU is needed to test it)."""
    state = torch.load(path, weights_only=True)
    state["config"]["device"] = device
    for key, value in changes.items():
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    checkpoint.save(path, {k: v for k, v in state.items() if not k.startswith("format")})


def test_a_run_resumed_on_another_device_keeps_its_dtype_and_says_where_each_epoch_ran(tmp_path, mnist_small):
    cfg = preset("article-a", epochs=1, train_limit=500, test_limit=300, device="cpu", precision="auto")
    first = train(cfg, tmp_path / "a", splits=mnist_small, progress=False)
    here = first.metrics["device"]
    assert here.startswith(f"cpu: {runtime.cpu_model()}, ")           # the CPU model is on record
    state = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    assert state["devices"] == [[here, 1, 1]] and state["dtype"] == first.metrics["precision"]
    # A recorded dtype wins over what "auto" would pick on either device.
    train(cfg, tmp_path / "b", splits=mnist_small, progress=False)
    _as_if_written_on(tmp_path / "b" / "checkpoint.pt", "cuda", dtype="bfloat16",
                      devices=[["cuda: a GPU", 1, 1]])
    result = train(preset("article-a", epochs=2, train_limit=500, test_limit=300, device="cpu"),
                   tmp_path / "b", resume=True, splits=mnist_small, progress=False)
    assert result.metrics["precision"] == "bfloat16"
    assert result.metrics["device"] == f"cuda: a GPU (epochs 1-1); {here} (epochs 2-2)"
    # Other options still may not change.
    with pytest.raises(checkpoint.CheckpointError, match="lam"):
        train(preset("article-a", epochs=3, train_limit=500, test_limit=300, device="cpu", lam=3.0),
              tmp_path / "b", resume=True, splits=mnist_small, progress=False)


SCRIPT = """
import sys
from vaeclust_tutorial import preset, train
cfg = preset("article-a", epochs=4, train_limit=2000, test_limit=300, device="cpu")
train(cfg, sys.argv[1], resume=True, progress=False)
"""


@pytest.mark.slow
def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run([sys.executable, "-c", SCRIPT, str(full)], env=env, check=True)
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(killed)], env=env)
    deadline = time.time() + 300
    history = killed / "history.json"
    while time.time() < deadline and not (history.exists() and len(json.loads(history.read_text())) >= 2):
        time.sleep(0.05)
    time.sleep(0.3)                                       # somewhere inside epoch 3
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = checkpoint.load(killed / "checkpoint.pt")["epoch"]
    assert 2 <= done < 4, "the kill should land before the end of the run"
    assert not (killed / "metrics.json").exists()
    subprocess.run([sys.executable, "-c", SCRIPT, str(killed)], env=env, check=True)
    a = json.loads((full / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    assert a["test"] == b["test"] and a["train"] == b["train"]
    assert _no_clock(json.loads((full / "history.json").read_text())) == \
        _no_clock(json.loads((killed / "history.json").read_text()))
    assert not list(killed.glob(".*.tmp")), "no temporary files left behind"


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_config, mnist_small,
                                                                   monkeypatch):
    real, calls = training.cluster_vae_loss, {"n": 0}

    def poisoned(*args, **kwargs):
        terms = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 8:                      # epoch 2 (5 steps per epoch), step 3
            terms["cluster_kl"] = terms["cluster_kl"] * float("nan")
        return terms

    monkeypatch.setattr(training, "cluster_vae_loss", poisoned)
    with pytest.raises(training.NonFiniteLossError, match=r"epoch 2, step 3: cluster_kl=nan;") as e:
        train(tiny_config, tmp_path, splits=mnist_small, progress=False)
    assert "kept intact" in str(e.value)
    state = checkpoint.load(tmp_path / "checkpoint.pt")
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values())


@pytest.mark.parametrize("make_out", [
    lambda tmp: tmp / "a-file",                     # a file where the folder should be
    lambda tmp: tmp / "a-file" / "run",             # a file where a parent folder should be
    lambda tmp: Path("/proc/vaeclust-cannot-write"),
])
def test_unwritable_output_fails_before_training(tmp_path, tiny_config, monkeypatch, make_out):
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setattr(training, "load_splits", lambda *a: pytest.fail("training must not start"))
    with pytest.raises(ValueError, match="output"):
        train(tiny_config, make_out(tmp_path), progress=False)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/vaeclust-ckpt-pwned",))


@pytest.mark.parametrize("kind, match", [
    ("truncated", "not a readable vaeclust checkpoint"),
    ("garbage", "not a readable vaeclust checkpoint"),
    ("foreign", "not a vaeclust checkpoint"),
    ("evil", "refused without being run"),
    ("future", "format 99"),
    ("bad-config", "invalid config"),
    ("other-arch", "do not fit its config"),
    ("missing", "does not exist"),
])
def test_bad_checkpoints_get_a_clear_error(tmp_path, trained_run, kind, match):
    good = trained_run
    raw = (good / "checkpoint.pt").read_bytes()
    path = tmp_path / "bad.pt"
    marker = Path("/tmp/vaeclust-ckpt-pwned")
    marker.unlink(missing_ok=True)
    state = torch.load(good / "checkpoint.pt", weights_only=True)
    if kind == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif kind == "garbage":
        path.write_bytes(os.urandom(5000))
    elif kind == "foreign":
        torch.save({"weights": torch.zeros(3)}, path)
    elif kind == "evil":
        torch.save({"format": "vaeclust-checkpoint", "payload": _Evil()}, path)
    elif kind == "future":
        torch.save({**state, "format_version": 99}, path)
    elif kind == "bad-config":
        torch.save({**state, "config": {**state["config"], "n_clusters": 1}}, path)
    elif kind == "other-arch":
        torch.save({**state, "config": {**state["config"], "network": "article-b"}}, path)
    else:
        path = tmp_path / "nope.pt"
    with pytest.raises(checkpoint.CheckpointError, match=match):
        checkpoint.model_from_checkpoint(path)
    assert not marker.exists(), "loading must never execute code from the file"


def test_invalid_configs_name_the_field_and_the_valid_values():
    with pytest.raises(ValueError, match=r"unknown dataset 'svhn'; valid values are \['mnist', 'fashion-mnist'\]"):
        preset(dataset="svhn")
    with pytest.raises(ValueError, match=r"epochs=0 is invalid.*>= 1"):
        preset(epochs=0)
    with pytest.raises(ValueError, match=r"epochs=2.5 is invalid: it must be an integer"):
        preset(epochs=2.5)
    with pytest.raises(ValueError, match=r"n_clusters=1 is invalid.*>= 2 \(K, number"):
        preset(n_clusters=1)
    with pytest.raises(ValueError, match=r"lr=nan is invalid: it must be a finite number"):
        preset(lr=float("nan"))
    with pytest.raises(ValueError, match=r"cat_weight=-1 is invalid.*>= 0"):
        preset(cat_weight=-1)
    with pytest.raises(ValueError, match=r"train_limit=0 is invalid"):
        preset(train_limit=0)
    assert preset(train_limit=None).train_limit is None
    with pytest.raises(ValueError, match=r"lam=0 is invalid.*> 0"):
        preset(lam=0)
    with pytest.raises(ValueError, match=r"latent_dim=0 is invalid"):
        preset(latent_dim=0)
    with pytest.raises(ValueError, match="valid configurations"):
        preset("article-z")
    with pytest.raises(ValueError, match="CUDA is not available|unknown device"):
        runtime.resolve_device("cuda:7" if not torch.cuda.is_available() else "tpu")


def test_notebook_reruns_reuse_their_own_folder_and_never_mix(tmp_path, monkeypatch, mnist_small):
    from vaeclust_tutorial.pretrained import load_or_train, notebook_run_dir
    monkeypatch.setenv("VAECLUST_RUNS", str(tmp_path))
    monkeypatch.setattr(training, "load_splits", lambda *a: mnist_small)
    cfg = preset("article-a", epochs=2, train_limit=500, test_limit=300, device="cpu")
    lines = []
    _, history, metrics = load_or_train(cfg, "nb", log=lines.append)
    assert notebook_run_dir("nb") == tmp_path / "nb-quick"          # quick runs stay apart from real ones
    assert (tmp_path / "nb-quick" / "metrics.json").exists() and any("training into" in x for x in lines)
    before = (tmp_path / "nb-quick" / "checkpoint.pt").read_bytes()
    _, history2, metrics2 = load_or_train(cfg, "nb", log=lines.append)  # a re-run: loads, does not retrain
    assert "Found a finished run" in lines[-1]
    assert metrics2 == metrics and _no_clock(history2) == _no_clock(history)
    assert (tmp_path / "nb-quick" / "checkpoint.pt").read_bytes() == before
    (tmp_path / "nb-quick" / "metrics.json").unlink()                  # as if the kernel died before the end
    _, history3, metrics3 = load_or_train(cfg, "nb", log=lines.append)
    assert metrics3["test"] == metrics["test"] and len(history3) == 2


def test_auto_precision_is_bf16_only_on_cpus_with_native_bf16(monkeypatch):
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    for has in (True, False):
        monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: has)
        assert runtime.resolve_precision("auto", cpu) == (torch.bfloat16 if has else torch.float32)
        assert runtime.resolve_precision("auto", gpu) == torch.float32
        assert runtime.resolve_precision("auto", torch.device("mps")) == torch.float32
        assert runtime.resolve_precision("fp32", cpu) == torch.float32
        assert runtime.resolve_precision("bf16", gpu) == torch.bfloat16


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_auto_device_is_what_a_student_has(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert runtime.resolve_device("auto").type == expected
    if not mps:
        with pytest.raises(ValueError, match="MPS is not available"):
            runtime.resolve_device("mps")


def test_a_new_loss_term_is_minimised_logged_and_plotted(monkeypatch, tiny_config, mnist_small):
    """What docs/adding_a_loss_term.md promises: a term returned by cluster_vae_loss is in the
    total, in the history under its own name, and in the training-curves figure."""
    from vaeclust_tutorial import losses, plots
    real = losses.cluster_vae_loss

    def with_extra(x, out, model, cfg, **kwargs):
        return {**real(x, out, model, cfg, **kwargs), "means_norm": 0.1 * model.means.pow(2).sum()}

    monkeypatch.setattr(training, "cluster_vae_loss", with_extra)
    history = train(tiny_config, splits=mnist_small, progress=False).history
    assert "means_norm" in history[0]
    terms = ("reconstruction", "cluster_kl", "categorical_kl", "means_norm")
    assert history[-1]["loss"] == pytest.approx(sum(history[-1][t] for t in terms), rel=1e-5)
    fig = plots.training_curves_figure(history)
    assert "means norm" in [t.get_text() for t in fig.axes[1].get_legend().get_texts()]


@pytest.mark.parametrize("beyond", [{}, dict(cat_weight=0.0, info_weight=5.0, consistency_weight=50.0,
                                             term2_trains_classifier=False)], ids=["article", "beyond"])
def test_a_bf16_step_matches_the_fp32_step(mnist_small, beyond):
    """bf16 autocast changes the rounding, not the step: on real MNIST images, with the same noise
    sample (and the same moves), the loss terms agree to 1 % and the gradient points the same way
    (cosine > 0.99). The terms beyond the article run their extra passes in the forward's precision."""
    cfg = preset("article-b", **beyond)
    x = mnist_small[0].images[:100].contiguous(memory_format=torch.channels_last)
    device = torch.device("cpu")
    model = build_model(cfg).to(memory_format=torch.channels_last)
    terms, grads = {}, {}
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(1)                                        # the same z sample for both
        model.zero_grad()
        with runtime.autocast(device, dtype):
            out = model(x)
        t = training.cluster_vae_loss(x, out, model, cfg)
        training.total(t).backward()
        assert training.total(t).dtype == torch.float32                # the loss is fp32 in any case
        terms[dtype] = torch.stack([v.detach() for v in t.values()])
        grads[dtype] = torch.cat([p.grad.flatten() for p in model.parameters()])
    torch.testing.assert_close(terms[torch.bfloat16], terms[torch.float32], rtol=0.01, atol=1e-3)
    cos = torch.nn.functional.cosine_similarity(grads[torch.float32], grads[torch.bfloat16], dim=0)
    assert cos > 0.99


def test_the_shipped_model_stands_in_only_for_the_config_it_was_trained_with():
    import dataclasses

    from vaeclust_tutorial.pretrained import config_difference
    shipped = checkpoint.load(checkpoint.shipped_path("mnist"))["config"]
    same = dataclasses.replace(shipped, device="cpu", precision="bf16", eval_every=5)
    assert config_difference(shipped, same) == {}
    other = dataclasses.replace(shipped, seed=shipped.seed + 1)
    assert config_difference(shipped, other) == {"seed": (shipped.seed, shipped.seed + 1)}


@pytest.mark.parametrize("extra, logged", [({}, set()), (dict(vat_weight=5.0), {"adversarial_consistency"})],
                         ids=["moves", "moves+adversarial"])
def test_a_run_with_the_terms_beyond_the_article_resumes_exactly(tmp_path, mnist_small, extra, logged):
    """The consistency term draws its random moves, and the adversarial term its random start
    direction, from the global generator, which checkpoints hold."""
    beyond = dict(train_limit=500, test_limit=300, device="cpu", info_weight=1.0, consistency_weight=10.0,
                  term2_trains_classifier=False, **extra)
    whole = train(preset("article-a", epochs=2, **beyond), tmp_path / "whole", splits=mnist_small, progress=False)
    assert {"batch_information", "consistency"} | logged <= set(whole.history[0])
    train(preset("article-a", epochs=1, **beyond), tmp_path / "split", splits=mnist_small, progress=False)
    resumed = train(preset("article-a", epochs=2, **beyond), tmp_path / "split", resume=True,
                    splits=mnist_small, progress=False)
    assert _no_clock(resumed.history) == _no_clock(whole.history)


def test_a_bad_adversarial_setting_is_refused_with_its_range():
    with pytest.raises(ValueError, match="vat_epsilon=0.0 is invalid: it must be > 0"):
        preset("beyond", vat_weight=50.0, vat_epsilon=0.0)
    with pytest.raises(ValueError, match="vat_weight=-1.0 is invalid: it must be >= 0"):
        preset("beyond", vat_weight=-1.0)


def test_the_cosine_schedule_falls_from_lr_to_zero_and_constant_stays():
    cfg = preset("article-b", epochs=4, lr=0.002, lr_schedule="cosine")
    assert training.learning_rate(cfg, 1, 0, 10) == 0.002                          # first step: lr
    assert training.learning_rate(cfg, 3, 0, 10) == pytest.approx(0.001)            # half way: lr / 2
    last = training.learning_rate(cfg, 4, 9, 10)
    assert 0 < last < 0.002 * 1e-2                                                 # last step: almost 0
    lrs = [training.learning_rate(cfg, e, s, 10) for e in range(1, 5) for s in range(10)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))                                # falls at every step
    assert {training.learning_rate(preset("article-b", lr=0.002), e, s, 10) for e in (1, 4) for s in (0, 9)} == {0.002}


def test_a_cosine_run_resumes_exactly_after_a_crash_and_only_at_its_own_length(tmp_path, mnist_small):
    cfg = preset("article-a", epochs=2, train_limit=500, test_limit=300, device="cpu", lr_schedule="cosine")
    whole = train(cfg, tmp_path / "whole", splits=mnist_small, progress=False)
    _crash_after_epoch_1(cfg, tmp_path / "crashed", mnist_small)
    with pytest.raises(checkpoint.CheckpointError, match="resume with --epochs 2"):
        train(preset("article-a", epochs=3, train_limit=500, test_limit=300, device="cpu", lr_schedule="cosine"),
              tmp_path / "crashed", resume=True, splits=mnist_small, progress=False)
    resumed = train(cfg, tmp_path / "crashed", resume=True, splits=mnist_small, progress=False)
    assert _no_clock(resumed.history) == _no_clock(whole.history)
    constant = train(preset("article-a", epochs=2, train_limit=500, test_limit=300, device="cpu"), tmp_path / "c",
                     splits=mnist_small, progress=False)
    assert constant.history[1]["loss"] != whole.history[1]["loss"]                 # the schedule is applied


def test_mirroring_digits_is_warned_about(mnist_small):
    lines = []
    cfg = preset("beyond", epochs=1, train_limit=200, test_limit=100, device="cpu", move_flip=True)
    train(cfg, splits=mnist_small, progress=False, log=lines.append)
    assert any("warning: move_flip" in line and "a mirrored 2 is no digit" in line for line in lines)
    lines.clear()
    train(preset("beyond", epochs=1, train_limit=200, test_limit=100, device="cpu"), splits=mnist_small,
          progress=False, log=lines.append)
    assert not any("warning" in line for line in lines)


def test_the_balance_schedule_falls_linearly_from_its_start_to_beta_and_is_off_by_default():
    cfg = preset("beyond", epochs=5, info_balance=4.0, info_balance_start=8.0)
    assert [training.info_balance_at(cfg, e) for e in range(1, 6)] == [8.0, 7.0, 6.0, 5.0, 4.0]
    assert training.info_balance_at(preset("beyond", epochs=1, info_balance_start=8.0), 1) == 8.0   # one epoch
    assert {training.info_balance_at(preset("beyond", epochs=5), e) for e in range(1, 6)} == {4.0}
    with pytest.raises(ValueError, match="info_balance_start"):
        preset("beyond", info_balance_start=-1.0)


def test_each_epoch_trains_with_its_own_balance(monkeypatch, mnist_small, tmp_path):
    seen = []
    real = losses.batch_information

    def spy(p_y, balance=4.0):
        seen.append(balance)
        return real(p_y, balance)
    monkeypatch.setattr(losses, "batch_information", spy)
    cfg = preset("beyond", epochs=3, info_balance_start=6.0, train_limit=200, test_limit=100, device="cpu",
                 consistency_weight=0.0)
    epochs = len(train(cfg, tmp_path / "run", splits=mnist_small, progress=False).history)   # 2 in quick mode
    assert epochs >= 2 and len(seen) % epochs == 0
    per_epoch = [seen[i:i + len(seen) // epochs] for i in range(0, len(seen), len(seen) // epochs)]
    assert all(len(set(betas)) == 1 for betas in per_epoch)                        # one beta per epoch
    assert [betas[0] for betas in per_epoch] == pytest.approx([6.0 - 2.0 * e / (epochs - 1) for e in range(epochs)])


def test_the_teacher_follows_the_moving_average_of_the_weights():
    """make_teacher: the first update copies the weights, then theta' <- d_t theta' + (1 - d_t) theta
    with d_t = min(d, (1 + t) / (10 + t)) after t updates, checked against the formula step by step."""
    net = torch.nn.Linear(3, 2)
    teacher = training.make_teacher(net, 0.5)
    expected = None
    for t in range(6):
        with torch.no_grad():
            net.weight.add_(torch.randn_like(net.weight))
        teacher.update_parameters(net)
        d = min(0.5, (1 + t) / (10 + t))
        expected = net.weight.detach().clone() if t == 0 else d * expected + (1 - d) * net.weight.detach()
        assert torch.allclose(teacher.module.weight, expected, atol=1e-6), t
    assert not any(p.requires_grad for p in teacher.parameters())          # only the average moves it
    assert int(teacher.n_averaged) == 6


def test_the_consistency_targets_are_the_teachers(mnist_small):
    cfg = preset("beyond", device="cpu", precision="fp32")
    model = build_model(cfg)
    x = mnist_small[0].images[:16]
    out = model(x)

    def terms(teacher):
        torch.manual_seed(0)                                               # the same moves each time
        return losses.cluster_vae_loss(x, out, model, cfg, teacher=teacher)
    alike = training.make_teacher(model, 0.9).module                       # a copy: the same targets
    assert torch.allclose(terms(None)["consistency"], terms(alike)["consistency"])
    other = build_model(cfg)                                      # other weights: other targets
    with_other = terms(other)
    assert not torch.allclose(terms(None)["consistency"], with_other["consistency"])
    losses.total(with_other).backward()
    assert all(p.grad is None for p in other.parameters())                 # no gradient reaches the teacher
    assert model.classifier.net[0].weight.grad is not None                   # it reaches the model


def test_a_teacher_run_saves_the_teacher_and_resumes_exactly(tmp_path, mnist_small):
    cfg = preset("beyond", epochs=2, train_limit=500, test_limit=300, device="cpu", precision="fp32",
                 teacher_decay=0.99, teacher_targets=True)
    whole = train(cfg, tmp_path / "whole", splits=mnist_small, progress=False)
    _crash_after_epoch_1(cfg, tmp_path / "crashed", mnist_small)
    resumed = train(cfg, tmp_path / "crashed", resume=True, splits=mnist_small, progress=False)
    assert _no_clock(resumed.history) == _no_clock(whole.history)
    state = checkpoint.load(tmp_path / "whole" / "checkpoint.pt")
    assert state["teacher_updates"] == 2 * 5                               # 500 images, batches of 100
    assert any(not torch.equal(state["student"][k], v) for k, v in state["model"].items())   # two sets of weights
    shipped, _ = checkpoint.model_from_checkpoint(tmp_path / "whole" / "checkpoint.pt")
    assert all(torch.equal(a, b) for a, b in zip(shipped.state_dict().values(), whole.model.state_dict().values()))
    assert evaluate(shipped, mnist_small[1]) == whole.metrics["test"]      # the record is the teacher's


def test_bad_teacher_settings_say_what_to_do():
    with pytest.raises(ValueError, match="teacher_decay=1.0 is invalid: it must be below 1"):
        preset("beyond", teacher_decay=1.0)
    with pytest.raises(ValueError, match="teacher_decay=-0.5 is invalid"):
        preset("beyond", teacher_decay=-0.5)
    with pytest.raises(ValueError, match="needs consistency_weight > 0.*leave teacher_targets out"):
        preset("article-b", teacher_decay=0.99, teacher_targets=True)
    assert preset("article-b", teacher_decay=0.99).teacher_decay == 0.99      # read out only: no targets needed


def test_a_teacher_only_read_out_leaves_training_as_it_was(tmp_path, mnist_small):
    """teacher_targets=False: the same steps as without a teacher; the record is the average's, and
    each epoch also scores the trained weights, which are those of the run without a teacher."""
    cfg = dict(epochs=2, train_limit=500, test_limit=300, device="cpu", precision="fp32")
    plain = train(preset("beyond", **cfg), tmp_path / "plain", splits=mnist_small, progress=False)
    read_out = train(preset("beyond", teacher_decay=0.99, **cfg), tmp_path / "avg",
                     splits=mnist_small, progress=False)
    for a, b in zip(plain.history, read_out.history):
        assert a["loss"] == b["loss"] and a["consistency"] == b["consistency"]
        assert {k: a[f"test_{k}"] for k in ("accuracy", "purity")} == \
            {k: b[f"trained_test_{k}"] for k in ("accuracy", "purity")}
    assert "trained_test_accuracy" not in plain.history[0]
    assert any(not torch.equal(p, q) for p, q in zip(plain.model.parameters(), read_out.model.parameters()))

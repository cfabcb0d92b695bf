"""Training: the loss, resuming bit for bit, DDP against one process, bad input."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pafpose import PafposeError
from pafpose.train import EpochSampler, TrainConfig, Trainer, stage_losses

EXE = shutil.which("pafpose") or str(Path(sys.executable).with_name("pafpose"))


def synthetic_set(tmp_path, n=6, missing=0):
    """Noise images with a random person each (COCO-17), written by the test."""
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(n + missing):
        name = f"{i}.png"
        if i < n:
            cv2.imwrite(str(tmp_path / name), rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
        images.append({"id": i + 1, "file_name": name, "width": 128, "height": 96})
        kps = np.c_[rng.uniform(20, 100, 17), rng.uniform(10, 85, 17), np.full(17, 2.0)]
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "num_keypoints": 17,
                     "keypoints": kps.ravel().tolist(), "bbox": [20, 10, 80, 75], "area": 6000.0})
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}))
    return path


def config(tmp_path, **kw):
    values = {"annotations": str(synthetic_set(tmp_path)), "images": str(tmp_path),
              "model": "human-pose-estimation-0001", "size": 64, "batch_size": 2, "iterations": 4, "workers": 0,
              "checkpoint_every": 2, "log_every": 1, "lr": 1e-3, "out": str(tmp_path / "run")}
    values.update(kw)
    return TrainConfig(**values)


def test_loss_is_masked_l2_summed_over_stages():
    target = {"heatmaps": torch.zeros(2, 3, 4, 4), "pafs": torch.zeros(2, 2, 4, 4), "mask": torch.ones(2, 4, 4)}
    out = [(torch.ones(2, 3, 4, 4), torch.zeros(2, 2, 4, 4)), (torch.zeros(2, 3, 4, 4), torch.full((2, 2, 4, 4), 2.0))]
    losses = stage_losses(out, target)
    assert [float(x) for x in losses] == [2 * 3 * 16 / 2 / 2, 2 * 2 * 16 * 4 / 2 / 2]
    target["mask"][:, :2] = 0
    assert float(stage_losses(out, target)[0]) == 2 * 3 * 8 / 2 / 2


def test_ddp_sampler_shards_are_the_single_process_batches():
    one = EpochSampler(10, seed=3).order()
    a, b = EpochSampler(10, seed=3, rank=0, world=2).order(), EpochSampler(10, seed=3, rank=1, world=2).order()
    for step in range(2):  # global batch 4 = 2 per process
        assert sorted(one[4 * step : 4 * step + 4]) == sorted(a[2 * step : 2 * step + 2] + b[2 * step : 2 * step + 2])


def fixed_batch_loss(trainer):
    from pafpose.data import collate

    batch = collate([trainer.dataset[i] for i in range(len(trainer.dataset))])
    with torch.no_grad():
        return float(sum(stage_losses(trainer.net(batch["image"]), batch)))


def test_training_lowers_the_loss_and_resumes_bit_for_bit(tmp_path):
    full = Trainer(config(tmp_path, out=str(tmp_path / "full")), progress=False)
    before = fixed_batch_loss(full)
    full.run()
    assert fixed_batch_loss(full) < 0.9 * before  # the same samples, after 4 steps
    log = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log] == [1, 2, 3, 4] and len(log[0]["stages"]) == 2

    half = Trainer(config(tmp_path, out=str(tmp_path / "half"), iterations=2), progress=False)
    half.run()
    resumed = Trainer(config(tmp_path, out=str(tmp_path / "half")), resume=tmp_path / "half" / "last.pt",
                      progress=False)
    assert resumed.iteration == 2 and resumed.position == 2
    resumed.run()
    a, b = full.net.state_dict(), resumed.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # identical, not merely close
    saved = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    assert saved["iteration"] == 4 and set(saved) >= {"model", "optimizer", "scheduler", "scaler", "rng"}
    assert not list((tmp_path / "full").glob(".*"))  # checkpoints were written atomically


def test_tensorboard_gets_scalars_and_target_vs_prediction_images(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'pafpose[train]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = Trainer(config(tmp_path, iterations=3, tensorboard=True), progress=False)
    trainer.run()
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    assert {"loss", "lr", "images_per_s", "loss/stage1", "loss/stage2"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("loss")] == [1, 2, 3]
    images = events.Images("samples/target_vs_prediction")
    assert [e.step for e in images] == [2, 3]  # every checkpoint (checkpoint_every=2) and the end
    panel = cv2.imdecode(np.frombuffer(images[-1].encoded_image_string, np.uint8), cv2.IMREAD_COLOR)
    assert panel.shape == (2 * 64, 3 * 64, 3)  # target and prediction rows, 3 tiles of the 64 px crop


def test_fields_panel_puts_the_target_peak_where_the_keypoint_is():
    from pafpose.models import build_architecture
    from pafpose.viz import fields_panel

    net = build_architecture("human-pose-estimation-0001")
    k, s = net.spec.num_keypoints, net.spec.stride
    image = np.full((64, 96, 3), 100, np.uint8)
    hm = np.zeros((k + 1, 8, 12), np.float32)
    hm[3, 2, 9] = 1.0  # cell (x=9, y=2) -> input pixel ~ (9*8+3.5, 2*8+3.5)
    paf = np.zeros((2 * len(net.spec.limbs), 8, 12), np.float32)
    panel = fields_panel(image, (hm, paf), (np.zeros_like(hm), paf), net.spec)
    assert panel.shape == (128, 288, 3) and panel.dtype == np.uint8
    tile = panel[:64, 96:192].astype(int)  # target heatmaps (RGB): red at the peak, blue elsewhere
    y, x = 2 * s + s // 2, 9 * s + s // 2
    assert tile[y, x, 0] > tile[y, x, 2] + 50 and tile[40, 20, 2] > tile[40, 20, 0] + 50
    predicted = panel[64:, 96:192].astype(int)
    assert predicted[y, x, 2] > predicted[y, x, 0] + 50  # a zero prediction is blue there


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun is not installed beside this Python")
def test_ddp_two_processes_match_one(tmp_path):
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    cfg = config(tmp_path)
    args = ["--annotations", cfg.annotations, "--images", cfg.images, "--model", cfg.model, "--size", "64",
            "--batch-size", "4", "--iterations", "3", "--workers", "0", "--log-every", "1", "--lr", "1e-3",
            "--optimizer", "sgd", "--checkpoint-every", "3", "--no-amp",  # float32 throughout: rounding
            "--quiet"]  # is all that may differ, and SGD, as Adam's sign(g) amplifies it
    one = subprocess.run([EXE, "train", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "pafpose.cli", "train", *args,
                          "--out", str(tmp_path / "two")], capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "2 process(es)" in two.stdout
    logs = [[json.loads(line) for line in (tmp_path / d / "log.jsonl").read_text().splitlines()]
            for d in ("one", "two")]
    assert len(logs[0]) == len(logs[1]) == 3
    for a, b in zip(*logs, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    w1 = torch.load(tmp_path / "one" / "last.pt", weights_only=True)["model"]
    w2 = torch.load(tmp_path / "two" / "last.pt", weights_only=True)["model"]
    init = Trainer(cfg, progress=False).net.state_dict()  # same seed: the weights both runs started from
    moved = max(float((w1[k] - init[k]).abs().max()) for k in w1)
    diff = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    assert moved > 1e-4 and diff < 1e-3 * moved


def test_bad_input_is_a_clear_error_and_bad_samples_are_skipped(tmp_path):
    (tmp_path / "bad").mkdir()
    path = synthetic_set(tmp_path / "bad", n=4, missing=2)
    data = json.loads(path.read_text())
    (tmp_path / "bad" / "0.png").write_bytes(b"\x89PNG truncated")  # listed, but unreadable
    data["annotations"].append({**data["annotations"][1], "id": 99, "keypoints": [1, 2, 2]})  # broken
    data["annotations"].append({**data["annotations"][1], "id": 98, "image_id": 1234})  # no such image
    path.write_text(json.dumps(data))
    trainer = Trainer(config(tmp_path, annotations=str(path), images=str(tmp_path / "bad"), iterations=2,
                             log_every=2), progress=False)
    skipped = trainer.dataset.report.skipped
    assert len(trainer.dataset) == 4 and len(skipped) == 4, skipped
    assert sum("image file missing" in x for x in skipped) == 2 and any("3 keypoint values" in x for x in skipped)
    record = trainer.run()  # 2 steps of 2 go through all 4 samples, one of them unreadable
    assert trainer.iteration == 2 and trainer.skipped == 1 and record["skipped"] == 1
    r = subprocess.run([EXE, "train", "--annotations", str(path), "--images", str(tmp_path / "bad"), "--model",
                        "human-pose-estimation-0001", "--size", "64", "--batch-size", "2", "--iterations", "2",
                        "--workers", "0", "--out", str(tmp_path / "cli"), "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "4 images, 4 people with keypoints; 4 skipped" in r.stdout
    assert "1 unreadable image(s) passed over" in r.stdout and "0.png" in r.stderr
    with pytest.raises(PafposeError, match="annotations and images"):
        TrainConfig()
    with pytest.raises(PafposeError, match="unknown training option 'learning_rate'"):
        TrainConfig.from_dict({"annotations": "a", "images": "b", "learning_rate": 1})
    with pytest.raises(PafposeError, match="unknown architecture"):
        Trainer(config(tmp_path, model="resnet-9000"))
    with pytest.raises(PafposeError, match="fewer than the batch size"):
        Trainer(config(tmp_path, annotations=str(path), images=str(tmp_path / "bad"), batch_size=8))
    with pytest.raises(PafposeError, match="no such checkpoint"):
        Trainer(config(tmp_path), resume=tmp_path / "nope.pt")
    (tmp_path / "bad.yaml").write_text("lr: [unclosed\n")
    r = subprocess.run([EXE, "train", "--config", str(tmp_path / "bad.yaml")], capture_output=True, text=True)
    assert r.returncode == 2 and "not valid YAML" in r.stderr and r.stderr.count("\n") == 1
    (tmp_path / "typo.yaml").write_text("annotations: a\nimages: b\nlearning_rate: 1\n")
    r = subprocess.run([EXE, "train", "--config", str(tmp_path / "typo.yaml")], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown training option 'learning_rate'" in r.stderr


def test_fine_tuning_pretrained_weights_keeps_their_accuracy(tmp_path):
    from conftest import shared_dir

    shared = shared_dir()
    if shared is None:
        pytest.skip("../shared not found (set PAFPOSE_SHARED): fine-tuning starts from its weights")
    import os

    from pafpose import DecoderConfig
    from pafpose.evaluate import evaluate
    from pafpose.predict import Estimator

    mini, val = shared / "coco" / "train2017-mini", shared / "coco" / "val2017-dev"
    os.environ["PAFPOSE_WEIGHTS_PATH"] = str(shared / "weights")
    try:
        cfg = TrainConfig(annotations=str(mini / "person_keypoints.json"), images=str(mini / "images"),
                          model="human-pose-estimation-0001", init="human-pose-estimation-0001", size=368,
                          batch_size=4, iterations=3, lr=1e-6, workers=0, out=str(tmp_path / "ft"))
        trainer = Trainer(cfg, progress=False)
        start = {k: v.clone() for k, v in trainer.net.state_dict().items()}
        trainer.run()
    finally:
        del os.environ["PAFPOSE_WEIGHTS_PATH"]
    est = Estimator(trainer.net, device="cpu", decoder=DecoderConfig(fill_missing=True))
    ap = evaluate(est.predict, val / "person_keypoints.json", val / "images", progress=False).metrics["AP"]
    assert any(not torch.equal(v, start[k]) for k, v in trainer.net.state_dict().items())  # it did train
    assert abs(ap - 0.424) <= 0.02  # the recorded single-scale figure of the untouched weights (BENCHMARKS.md)


def test_validation_keeps_the_best_checkpoint(tmp_path):
    cfg = config(tmp_path, iterations=2, val_every=1)
    cfg.val_annotations, cfg.val_images = cfg.annotations, cfg.images
    Trainer(cfg, progress=False).run()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    vals = [r for r in log if "val/AP" in r]
    assert [r["iteration"] for r in vals] == [1, 2] and all(0 <= r["val/AP"] <= 1 for r in vals)
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert best["best_ap"] == max(r["val/AP"] for r in vals)


# Portrait photos of train2017-mini (640 px high): with no augmentation a training crop is the
# whole image scaled so its height is SIZE, exactly what `pafpose eval --height SIZE` feeds the
# network, so the score measures what was learnt rather than a change of scale. 9 people,
# 8 to 17 labelled keypoints each; 318219 has two.
OVERFIT_IMAGES = [12448, 33601, 69468, 151408, 253686, 318219, 535506, 574769]
OVERFIT_SIZE, OVERFIT_ITERATIONS = 192, 400


@pytest.mark.slow  # about 3 minutes of the suite's 2 cores: `make test-slow` runs it
def test_learning_works_a_small_model_overfits_8_images_from_scratch(tmp_path, shared):
    """The budget: lightweight-openpose from random weights, batch 8 (all 8 images), 192 px
    crops, Adam 2e-3, 400 iterations: about 4 minutes on 2 cores with bfloat16 (7.5 in
    float32 on a CPU without bfloat16 instructions). When it was chosen (float32), AP on the
    images was 0.41 after 200 iterations, 0.57 after 300, 0.63 after 400."""
    mini = shared / "coco" / "train2017-mini"
    data = json.loads((mini / "person_keypoints.json").read_text())
    data["images"] = [i for i in data["images"] if i["id"] in OVERFIT_IMAGES]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in OVERFIT_IMAGES]
    assert len(data["images"]) == 8 and all(i["height"] == 640 for i in data["images"])
    ann = tmp_path / "eight.json"
    ann.write_text(json.dumps(data))
    r = subprocess.run([EXE, "train", "--model", "lightweight-openpose", "--annotations", str(ann), "--images",
                        str(mini / "images"), "--no-augment", "--size", str(OVERFIT_SIZE), "--batch-size", "8",
                        "--iterations", str(OVERFIT_ITERATIONS), "--lr", "2e-3", "--workers", "0",
                        "--log-every", "50", "--checkpoint-every", "1000", "--out", str(tmp_path / "run"), "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < 0.2 * log[0]["loss"]
    # `pafpose eval` reads the architecture from the checkpoint: no --model
    r = subprocess.run([EXE, "eval", "--weights", str(tmp_path / "run" / "last.pt"), "--annotations", str(ann),
                        "--images", str(mini / "images"), "--height", str(OVERFIT_SIZE),
                        "--metrics-json", str(tmp_path / "m.json")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ap = json.loads((tmp_path / "m.json").read_text())["AP"]
    assert ap >= 0.5, f"AP {ap:.3f} after {OVERFIT_ITERATIONS} iterations"
    r = subprocess.run([EXE, "eval", "--weights", str(tmp_path / "run" / "last.pt"), "--model", "openpose-coco",
                        "--annotations", str(ann), "--images", str(mini / "images")], capture_output=True, text=True)
    assert r.returncode == 2 and "a checkpoint of a lightweight-openpose network, not of openpose-coco" in r.stderr


def strict_json_lines(path):
    """log.jsonl as strict JSON: NaN and Infinity tokens are refused, not parsed."""
    def refuse(token):
        raise AssertionError(f"{path}: {token} is not JSON")
    return [json.loads(line, parse_constant=refuse) for line in path.read_text().splitlines()]


def test_a_diverging_run_stops_at_once_and_keeps_the_good_checkpoint(tmp_path):
    # SGD at lr 10 in float32 diverges within a few steps on this data
    cfg = config(tmp_path, lr=10.0, optimizer="sgd", amp=False, iterations=20, checkpoint_every=1)
    trainer = Trainer(cfg, progress=False)
    with pytest.raises(PafposeError, match=r"iteration (\d+): the loss is not finite") as info:
        trainer.run()
    stopped = int(info.value.iteration)
    assert stopped < 20 and trainer.iteration == stopped - 1  # that step was not applied
    assert f"last.pt is from iteration {stopped - 1}" in str(info.value)
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert saved["iteration"] == stopped - 1
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())
    log = strict_json_lines(tmp_path / "run" / "log.jsonl")
    assert log[-1]["iteration"] == stopped and log[-1]["loss"] is None and None in log[-1]["stages"]
    assert all(r["loss"] is not None for r in log[:-1])

    # weights that went non-finite with a finite loss never replace a good checkpoint either
    good = (tmp_path / "run" / "last.pt").read_bytes()
    with torch.no_grad():
        next(trainer.net.parameters()).fill_(float("nan"))
    for name in ("last.pt", "best.pt"):
        with pytest.raises(PafposeError, match=f"weights are not finite.*{name} not written"):
            trainer.save_checkpoint(name)
    assert (tmp_path / "run" / "last.pt").read_bytes() == good and not (tmp_path / "run" / "best.pt").exists()

    r = subprocess.run([EXE, "train", "--annotations", cfg.annotations, "--images", cfg.images, "--model", cfg.model,
                        "--size", "64", "--batch-size", "2", "--iterations", "20", "--workers", "0", "--lr", "10",
                        "--optimizer", "sgd", "--no-amp", "--out", str(tmp_path / "cli"), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "the loss is not finite" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(("values", "message"), [
    ({"seed": -1}, "seed must be in"),
    ({"workers": -1}, "workers must be in"),
    ({"weight_decay": float("nan")}, "weight_decay must be a finite number"),
    ({"momentum": float("nan")}, "momentum must be a finite number"),
    ({"lr": float("inf")}, "lr must be a finite number"),
    ({"size": "368"}, "size must be a whole number, got '368'"),
    ({"iterations": 10.0}, "iterations must be a whole number"),
    ({"batch_size": True}, "batch_size must be a whole number"),
    ({"lr_steps": [100, -5]}, "lr_steps must be in"),
    ({"lr_steps": 100}, "lr_steps must be a list"),
    ({"lr_gamma": 0}, "lr_gamma must be in"),
    ({"val_height": 1e9}, "val_height must be a whole number"),
    ({"augment": "no"}, "augment must be true or false"),
    ({"model": 5}, "model must be a string"),
    ({"val_annotations": "v.json"}, "val_annotations and val_images go together"),
])
def test_every_option_is_checked_when_the_config_is_built(values, message):
    with pytest.raises(PafposeError, match=message):
        TrainConfig.from_dict({"annotations": "a.json", "images": "img", **values})


@pytest.mark.parametrize(("where", "text", "message"), [
    ("cli", ["--seed", "-1"], "argument --seed: must be in"),
    ("cli", ["--workers", "-1"], "argument --workers: must be in"),
    ("cli", ["--weight-decay", "nan"], "argument --weight-decay: must be a finite number"),
    ("cli", ["--lr-steps", "10", "x"], "argument --lr-steps: a whole number expected"),
    ("yaml", b'size: "368"\n', "size must be a whole number, got '368' (str)"),
    ("yaml", b"momentum: .nan\n", "momentum must be a finite number, got nan"),
    ("yaml", b"lr: \xff\xfe\n", "not UTF-8 text"),
    ("yaml", b"lr: [unclosed\n", "not valid YAML"),
    ("yaml", b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    ("yaml", b"1: 2\n", "unknown training option '1'"),
])
def test_bad_options_from_yaml_or_the_command_line_are_one_line_errors(tmp_path, where, text, message):
    args = ["--annotations", "a.json", "--images", str(tmp_path), "--out", str(tmp_path / "run")]
    if where == "yaml":
        (tmp_path / "c.yaml").write_bytes(text)
        args += ["--config", str(tmp_path / "c.yaml")]
    else:
        args += text
    r = subprocess.run([EXE, "train", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and message in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 or r.stderr.startswith("usage:")  # argparse adds its usage line
    assert not (tmp_path / "run").exists()  # nothing ran


def test_validation_set_and_output_folder_are_checked_before_training(tmp_path):
    (tmp_path / "val.json").write_text('{"images": [{"id": 1, "file_name": "a.png"}], "annotations": '
                                       '[{"image_id": 1, "keypoints": [0, 0, "2"], "bbox": [0, 0, 1, 1], '
                                       '"area": 1, "iscrowd": 0}]}')
    for values, message in (({"val_annotations": str(tmp_path / "val.json"), "val_images": str(tmp_path)},
                             "no usable annotation"),
                            ({"val_annotations": str(tmp_path / "nope.json"), "val_images": str(tmp_path)},
                             "no such annotation file"),
                            ({"val_annotations": None, "val_images": None, "out": str(tmp_path / "val.json")},
                             "is a file, not a folder")):
        cfg = config(tmp_path, **values)
        with pytest.raises(PafposeError, match=message):
            Trainer(cfg, progress=False)  # before the first step, not after the last
    cfg = config(tmp_path, val_annotations=cfg.annotations, val_images=str(tmp_path / "no-such-folder"))
    with pytest.raises(PafposeError, match=r"val_images .*no such image folder"):
        Trainer(cfg, progress=False)

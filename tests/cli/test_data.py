"""`edgemtl data import / check / show` on the command line, and the whole path a new user takes with labels
from another tool: import → data check clean → train 2 epochs → export with no flags → eval with no data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgemtl.data import read_tasks, training_sets
from tests.helpers import TINY_SIZE, assert_one_line_error, assert_png, invoke
from tests.label_files import (
    write_cityscapes,
    write_coco,
    write_colour_masks,
    write_cvat_masks,
    write_image_labels,
    write_labelme,
)

FRAMES = 8


def _sources(tmp_path: Path) -> dict[str, tuple[Path, list[str]]]:
    """format → (its fixture, extra flags): every importer, and image labels joined onto one."""
    table = tmp_path / "ids.csv"
    table.write_text("id,class\n0,background\n7,road\n26,car\n")
    labels = write_image_labels(tmp_path / "labels.csv", [f"{i:04d}.png" for i in range(FRAMES)])
    return {
        "cvat": (write_cvat_masks(tmp_path / "cvat", FRAMES), []),
        "coco": (write_coco(tmp_path / "coco", FRAMES), []),
        "labelme": (write_labelme(tmp_path / "labelme", FRAMES), ["--take", "masks"]),  # its rectangles painted
        "cityscapes": (write_cityscapes(tmp_path / "cityscapes", FRAMES), ["--table", str(table)]),
        "colours": (
            write_colour_masks(tmp_path / "colours", FRAMES),
            ["--labels", str(labels), "--map", "sky=background"],
        ),
    }


@pytest.mark.slow
def test_every_importer_round_trips_to_an_exported_model_that_scores_its_own_validation_split(tmp_path):
    for name, (src, flags) in _sources(tmp_path).items():
        data, run = tmp_path / f"{name}_data", tmp_path / f"{name}_run"
        result = invoke("data", "import", name, src, data, *flags)
        assert result.exit_code == 0, result.output
        assert f"wrote {data}: {FRAMES} frames" in result.output
        result = invoke("data", "check", data)
        assert result.exit_code == 0 and "no problems" in result.output, result.output
        train = ["train", "--data", data, "--epochs", 2, "--input-size", 32, "--batch-size", 4]
        result = invoke(*train, "--device", "cpu", "--no-progress", "-o", run)
        assert result.exit_code == 0, result.output
        result = invoke("export", run / "best.pt")
        assert result.exit_code == 0, result.output
        assert f"of {data}, the run's validation split" in result.output, result.output
        if name == "colours":  # its joined labels hold a regression of two named values: each one's MAE shows
            assert "pose           mae_x" in result.output and "pose           mae_y" in result.output
        result = invoke("eval", "-m", run / "best.pt", "-o", tmp_path / f"{name}_eval")
        assert result.exit_code == 0, result.output
        assert f"on {data} (the run's validation split)" in result.output
        assert name != "colours" or ("mae_x" in result.output and "mae_y" in result.output)
        if name == "cvat":  # an export records no validation frames: eval names the data it needs
            result = invoke("export", run / "best.pt", "--precision", "int8", "--no-verify")
            assert result.exit_code == 0 and "int8" in result.output, result.output  # calibrated on its train frames
            assert_one_line_error(invoke("eval", "-m", run / "best.onnx"), "best.onnx", "--data DATA", "segmentation")
        result = invoke("eval", data, "-m", run / "best.onnx", "-o", tmp_path / f"{name}_onnx", "--split", "all")
        assert result.exit_code == 0 and f"{FRAMES} frames" in result.output, result.output


def test_grouped_sequences_never_straddle_the_automatic_split(tmp_path):
    src = write_colour_masks(tmp_path / "src", 40)
    labels = tmp_path / "labels.csv"
    labels.write_text("image,group\n" + "".join(f"{i:04d}.png,drive_{i // 4}\n" for i in range(40)))
    assert invoke("data", "import", "colours", src, tmp_path / "data", "--labels", labels).exit_code == 0
    for seed in range(5):
        train, val = training_sets(
            tmp_path / "data",
            None,
            size=TINY_SIZE,
            tasks=read_tasks(tmp_path / "data"),
            train_count=0,
            val_count=0,
            seed=seed,
        )
        assert not set(train.info["group"]) & set(val.info["group"]), f"seed {seed}"
        assert len(val) >= 4 and len(val) % 4 == 0, "whole groups, about one frame in ten"
    assert invoke("data", "check", tmp_path / "data").exit_code == 0


def test_a_split_column_decides_and_a_group_in_two_splits_is_a_problem(tmp_path):
    src = write_colour_masks(tmp_path / "src", 8)
    labels = tmp_path / "labels.csv"
    rows = [f"{i:04d}.png,{'val' if i >= 6 else 'test' if i == 5 else 'train'},g{i // 2}" for i in range(8)]
    labels.write_text("image,split,group\n" + "\n".join(rows) + "\n")
    assert invoke("data", "import", "colours", src, tmp_path / "data", "--labels", labels).exit_code == 0
    train, val = training_sets(
        tmp_path / "data", None, size=TINY_SIZE, tasks=read_tasks(tmp_path / "data"), train_count=0, val_count=0, seed=0
    )
    assert train.info["image"].tolist() == [f"{i:04d}.png" for i in range(5)], "test frames never train"
    assert val.info["image"].tolist() == ["0006.png", "0007.png"]
    result = invoke("data", "check", tmp_path / "data")
    assert result.exit_code == 1
    assert "1 groups in two splits (first: 'g2' in test, train)" in result.output


def test_check_lists_every_problem_with_counts_and_show_draws_what_it_names(tmp_path):
    src = write_colour_masks(tmp_path / "src", 6)
    assert invoke("data", "import", "colours", src, tmp_path / "data").exit_code == 0
    data = tmp_path / "data"
    (data / "images" / "0001.png").write_bytes(b"not a png")
    (data / "masks" / "0002.png").unlink()
    (data / "images" / "0004.png").write_bytes((data / "images" / "0003.png").read_bytes())
    result = invoke("data", "check", data)
    assert result.exit_code == 1
    for line in ("1 unreadable images (first: 0001.png)", "1 masks of 'segmentation' missing", "1 duplicate images"):
        assert line in result.output, result.output
    assert "segmentation pixels: sky" in result.output and "image sizes: 32×32 ×5" in result.output
    sheet = tmp_path / "sheet.png"
    result = invoke("data", "show", data, "-o", sheet, "--findings")
    assert result.exit_code == 0, result.output
    assert "3 samples" in result.output
    assert_png(sheet)
    assert invoke("data", "show", data, "-o", tmp_path / "all.png", "-n", 4).exit_code == 0
    assert_png(tmp_path / "all.png")


def test_rare_classes_are_warned_about(tmp_path):
    src = write_colour_masks(tmp_path / "src", 4)
    labels = tmp_path / "labels.csv"
    labels.write_text("image,scene\n" + "".join(f"{i:04d}.png,{'rare' if i == 0 else 'common'}\n" for i in range(4)))
    assert invoke("data", "import", "colours", src, tmp_path / "data", "--labels", labels).exit_code == 0
    (tmp_path / "data" / "labels.csv").write_text(
        (tmp_path / "data" / "labels.csv").read_text().replace(",rare", ",common")
    )
    result = invoke("data", "check", tmp_path / "data")
    assert result.exit_code == 0
    assert "warning: class 'rare' of 'scene' is 0.00% of labelled images" in result.output


def test_a_rare_mask_class_is_warned_about_naming_the_default_that_handles_it(tmp_path):
    src = write_colour_masks(tmp_path / "src", 4)
    assert invoke("data", "import", "colours", src, tmp_path / "data").exit_code == 0
    for path in sorted((tmp_path / "data" / "masks").glob("*.png")):  # the car shrinks to one pixel of one frame
        ids = np.array(Image.open(path))
        ids[ids == 2] = 1
        ids[0, 0] = 2 if path.stem == "0000" else ids[0, 0]
        Image.fromarray(ids).save(path)
    result = invoke("data", "check", tmp_path / "data")
    assert result.exit_code == 0, result.output
    assert (
        "warning: class 'car' of 'segmentation' is 0.02% of labelled pixels (under 1%): training uses Dice + "
        "cross-entropy with inverse_sqrt class weights, the segmentation default, made for rare classes"
    ) in result.output, result.output


def test_import_errors_are_one_line(tmp_path):
    src = write_colour_masks(tmp_path / "src", 3)
    assert_one_line_error(invoke("data", "import", "colours", src, src / "out"), "inside the source")
    assert not (src / "out").exists()
    result = invoke("data", "import", "colours", src, tmp_path / "out", "--map", "bus=car")
    assert_one_line_error(result, "'bus'", "sky, road, car")
    assert_one_line_error(invoke("data", "check", tmp_path / "nowhere"), "does not exist")
    result = invoke("data", "show", src, "-o", tmp_path / "x.jpg")
    assert_one_line_error(result, "not a .png")


def test_export_of_a_folder_trained_model_needs_no_flags_even_without_a_record(tmp_path, trained_run):
    """A checkpoint of the synthetic tasks keeps verifying on synthetic scenes."""
    result = invoke("export", trained_run.best_checkpoint, "-o", tmp_path / "m.onnx")
    assert result.exit_code == 0, result.output
    assert "frames of synthetic validation scenes" in result.output

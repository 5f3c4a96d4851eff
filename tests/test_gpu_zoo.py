"""`sr-teach zoo train --all`: the SR recipes at their papers' sizes, side by side, each for a time budget.

The command is meant for a GPU; here it runs on the CPU for seconds, to show that every part works."""

from __future__ import annotations

import hashlib

import pytest

from sr_teach.tools.gpu_zoo import FULL_VDSR, paper_names, paper_recipe, steps_that_fit
from sr_teach.tools.zoo import RECIPES, main, weights_path


def test_the_papers_recipes_are_the_sr_ones_at_full_size():
    names = paper_names()
    ecbsr = {"ecbsr_x2", "ecbsr_x3", "ecbsr_x4"}  # prepared for a GPU, not shipped
    assert {"srcnn_x2", "fsrcnn_x3", "espcn_x4", "vdsr", *ecbsr} <= set(names)
    assert not any(name.startswith("dncnn") or "gan" in name for name in names)
    vdsr = paper_recipe("vdsr", "cuda")
    assert vdsr.experiment.model_options == FULL_VDSR and vdsr.experiment.train.device == "cuda"
    assert RECIPES["fsrcnn_x2"].finetune_from and paper_recipe("fsrcnn_x2", "cuda").finetune_from is None


def test_the_schedule_fits_the_time_left():
    # 100 steps took 2 s: 60 s more hold 3,000 steps, of which the schedule takes 90%
    assert steps_that_fit(100, 2.0, 60.0, steps_done=120) == 120 + 2700
    assert steps_that_fit(100, 2.0, 0.0, steps_done=120) == 121  # out of time: one more step


@pytest.mark.needs_datasets("T91", "BSD200", "Set5", "Set14")
def test_all_at_once_runs_and_keeps_the_shipped_weights_unless_beaten(datasets_dir, tmp_path, capsys):
    shipped = weights_path("espcn_x3")
    before = hashlib.sha256(shipped.read_bytes()).hexdigest()
    runs, into = tmp_path / "runs", tmp_path / "weights"
    assert main(["train", "--all", "--only", "espcn_x3", "--device", "cpu", "--minutes", "0.1", "--runs", str(runs),
                 "--into", str(into), "--data-dir", str(datasets_dir)]) == 0
    log = (runs / "espcn_x3.log").read_text()
    assert "steps/s here" in log and "validation" in log
    assert (runs / "espcn_x3.pt").exists()  # the run's state, to continue with `sr-teach train --resume`
    kept = "not kept" not in log
    assert (into / "espcn_x3.pt").exists() == kept and (runs / "espcn_x3_weights.pt").exists() == (not kept)
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == before  # --into: the shipped file is untouched
    assert "espcn_x3:" in capsys.readouterr().out


def test_all_refuses_a_recipe_it_does_not_train(tmp_path):
    with pytest.raises(SystemExit):
        main(["train", "--all", "--only", "dncnn_gray", "--runs", str(tmp_path)])

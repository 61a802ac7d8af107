"""Loading task.toml: the built-in task, any directory, and clear errors naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

import agents
from agents.task import TaskError, builtin_task_dir, load_task
from tests.agents.conftest import make_task


def test_agents_is_this_repository_not_the_pypi_package():
    repo = Path(__file__).resolve().parents[2]
    assert Path(agents.__file__).resolve().is_relative_to(repo / "agents")


def test_builtin_task_loads_with_its_declared_fields():
    task = load_task(None)
    assert task.root == builtin_task_dir()
    assert task.name == "shakespeare-gpt"
    assert task.editable == ("train.py",)
    assert task.metric_name == "val_bpb" and task.direction == "minimize"
    assert task.is_protected("prepare.py") and task.is_protected("data/shakespeare.jsonl.xz")
    assert not task.is_protected("train.py")
    assert task.notes.strip(), "program.md is read as the notes"
    assert task.argv("/py")[0] == "/py" and task.argv("/py")[1] == "train.py"
    assert task.hard_timeout(60) == 240


def test_any_directory_with_a_task_toml_is_a_task(tmp_path):
    task = load_task(make_task(tmp_path / "t", budget=7, timeout=9))
    assert task.name == "quad" and task.budget_cpu == 7 and task.hard_timeout(7) == 9
    assert "task.toml" in task.protected


@pytest.mark.parametrize(
    ("replace", "field"),
    [
        ('name = "quad"', "name"),
        ('editable = ["train.py"]', "editable"),
        ('run = "{python} train.py"', "run"),
        ('direction = "minimize"', "metric.direction"),
        ('name = "val_loss"', "metric.name"),
    ],
)
def test_missing_or_bad_fields_are_named(tmp_path, replace, field):
    root = make_task(tmp_path / "t")
    toml = root / "task.toml"
    text = toml.read_text()
    bad = {
        "name": "name = 3",
        "editable": 'editable = ["missing.py"]',
        "run": "run = 5",
        "metric.direction": 'direction = "down"',
        "metric.name": "name = 7",
    }[field]
    toml.write_text(
        text.replace(replace, bad, 1)
        if field != "metric.name"
        else text.replace('name = "val_loss"', bad)
    )
    with pytest.raises(TaskError) as err:
        load_task(root)
    assert f"field '{field}'" in str(err.value)
    assert str(toml) in str(err.value)


def test_unknown_field_budget_type_and_bad_toml_are_named(tmp_path):
    root = make_task(tmp_path / "t")
    toml = root / "task.toml"
    original = toml.read_text()
    toml.write_text('editabel = ["x"]\n' + original)
    with pytest.raises(TaskError, match="field 'editabel': unknown field"):
        load_task(root)
    toml.write_text(original + "hard_timeout = 5\n")  # lands in [budget]
    with pytest.raises(TaskError, match="field 'budget.hard_timeout': unknown field"):
        load_task(root)
    toml.write_text(original.replace("cpu = 1", 'cpu = "fast"'))
    with pytest.raises(TaskError, match="field 'budget.cpu'"):
        load_task(root)
    toml.write_text(original.replace('editable = ["train.py"]', 'editable = ["../etc/passwd"]'))
    with pytest.raises(TaskError, match="field 'editable'.*inside the task directory"):
        load_task(root)
    toml.write_text("name = \n")
    with pytest.raises(TaskError, match="not valid TOML"):
        load_task(root)
    assert (root / "train.py").exists(), "a failed load touches nothing"


def test_missing_directory_or_file(tmp_path):
    with pytest.raises(TaskError, match="does not exist"):
        load_task(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TaskError, match="no task.toml"):
        load_task(tmp_path / "empty")

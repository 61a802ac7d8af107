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


@pytest.mark.parametrize(
    ("lines", "field", "why"),
    [
        ('[metric]\npattern = "val loss"', "metric.pattern", "exactly one group"),
        ('[metric]\npattern = "(a)(b)"', "metric.pattern", "exactly one group"),
        ('[metric]\npattern = "val ([0-9"', "metric.pattern", "not a regular expression"),
        ("[metric]\npattern = 3", "metric.pattern", "valid string"),
        ("[metric]\nunit = 'bpb'", "metric.unit", "unknown field"),
        ("[budget]\ncpu = 0", "budget.cpu", "greater than 0"),
        ("[budget]\ntimeout = -1", "budget.timeout", "greater than or equal to 0"),
        ("[budget]\ncpu = true", "budget.cpu", "valid number"),
        ('[budget]\nenv = "HF_TOKEN"', "budget.env", "looks like a secret"),
        ('[env]\nOPENAI_API_KEY = "x"', "env.OPENAI_API_KEY", "looks like a secret"),
        ('[env]\nLABSWARM_TOKEN = "x"', "env.LABSWARM_TOKEN", "looks like a secret"),
        ('[env]\nDB_PASSWORD = "x"', "env.DB_PASSWORD", "looks like a secret"),
        ('[env]\nMY_SECRET_SAUCE = "x"', "env.MY_SECRET_SAUCE", "looks like a secret"),
        ("[env]\nNESTED = {a = 1}", "env.NESTED", "string, number or boolean"),
        ('[sandbox]\nnetwork = "yes"', "sandbox.network", "valid boolean"),
        ("[sandbox]\nwritable = ['/']", "sandbox.writable", "unknown field"),
        ("setup = 5", "setup", "string or a list of strings"),
        ("setup = []", "setup", "must not be empty"),
        ('setup = "unclosed \'quote"', "setup", "shell line"),
        ('notes = "missing.md"', "notes", "does not exist"),
        ('knobs = ["1x"]', "knobs", "not a Python identifier"),
        ('protected = ["train.py"]', "protected", "both editable and protected"),
        ('protected = ["../*"]', "protected", "inside the task directory"),
        ('protected = ["/etc/*"]', "protected", "inside the task directory"),
        ('editable = ["train.py", 7]', "editable", "valid string"),
        ('name = "  "', "name", "must not be empty"),
        ('[metric]\nmin = "low"', "metric.min", "valid number"),
        ("[metric]\nmax = nan", "metric.max", "finite number"),
        ("[metric]\nharness = 1", "metric.harness", "valid boolean"),
        ("[noise]\nmin = 0", "noise.min", "greater than 0"),
        ("[noise]\nmin = -0.01", "noise.min", "greater than 0"),
        ("[noise]\nmin = inf", "noise.min", "finite number"),
        ("[noise]\nsd = 0.1", "noise.sd", "unknown field"),
    ],
)
def test_every_field_is_validated_and_named(tmp_path, lines, field, why):
    root = make_task(tmp_path / "t")
    toml = root / "task.toml"
    table, _, line = lines.rpartition("\n")
    text = toml.read_text()
    if table == "[budget]":  # the fixture sets every budget key: replace it
        key = line.split("=")[0].strip()
        text = "\n".join(ln for ln in text.splitlines() if not ln.startswith(f"{key} ="))
    if table:  # put the line into its table (added if the task has none)
        text = text.replace(table, f"{table}\n{line}", 1) if table in text else text + lines
    else:  # a top-level line goes first (a duplicate key would be a TOML error instead)
        key = line.split("=")[0].strip()
        text = "\n".join(ln for ln in text.splitlines() if not ln.startswith(f"{key} ="))
        text = f"{line}\n{text}"
    toml.write_text(text)
    with pytest.raises(TaskError) as err:
        load_task(root)
    assert str(err.value).startswith(f"{toml}: field '{field}': "), str(err.value)
    assert why in str(err.value)


def test_pattern_setup_sandbox_and_env_load_with_their_defaults_in_one_place(tmp_path):
    plain = load_task(make_task(tmp_path / "plain"))
    assert plain.metric_pattern is None and plain.setup == () and plain.network is False
    assert plain.budget_env == "LABSWARM_TIME_BUDGET" and plain.setup_timeout == 3600
    assert plain.setup_argv("/py") == []
    root = make_task(
        tmp_path / "t",
        extra='setup = ["{python}", "prepare.py", "--fast"]\n'
        "[sandbox]\nnetwork = true\n[env]\nFLAG = true\nN = 3\nRATE = 0.5\n",
    )
    toml = root / "task.toml"
    toml.write_text(
        toml.read_text().replace(
            'direction = "minimize"', "direction = \"minimize\"\npattern = 'val loss (\\S+)'"
        )
    )
    task = load_task(root)
    assert task.metric_pattern == r"val loss (\S+)"
    assert task.setup_argv("/py") == ["/py", "prepare.py", "--fast"]
    assert task.network is True
    assert task.env == {"FLAG": "true", "N": "3", "RATE": "0.5"}
    shell = make_task(tmp_path / "s", extra="setup = \"{python} -c 'print(1)'\"\n")
    assert load_task(shell).setup_argv("/py") == ["/py", "-c", "print(1)"]


def test_the_built_in_task_and_the_fixture_validate_as_task_specs():
    from agents.task import TaskSpec

    assert set(TaskSpec.model_fields) == {
        "name", "description", "editable", "protected", "run", "setup", "notes", "knobs",
        "metric", "budget", "noise", "space", "sandbox", "env",
    }  # fmt: skip
    fixture = load_task(Path(__file__).parent / "fixtures" / "thirdparty")
    assert fixture.metric_pattern and fixture.setup


def test_a_notes_or_editable_link_out_of_the_task_is_refused(tmp_path):
    root = make_task(tmp_path / "t", extra='notes = "notes.md"\n')
    secret = tmp_path / "outside-notes.txt"
    secret.write_text("text from outside the task")
    (root / "notes.md").symlink_to(secret)
    with pytest.raises(TaskError, match="field 'notes': 'notes.md' is a link to a file outside"):
        load_task(root)
    (root / "notes.md").unlink()
    (root / "notes.md").write_text("inside")
    assert load_task(root).notes == "inside"


def test_metric_range_harness_and_noise_floor_load_and_default_to_unset(tmp_path):
    plain = load_task(make_task(tmp_path / "plain"))
    assert plain.metric_min is None and plain.metric_max is None
    assert plain.metric_harness is False and plain.noise_min is None
    root = make_task(tmp_path / "t", extra="[noise]\nmin = 0.002\n")
    toml = root / "task.toml"
    toml.write_text(
        toml.read_text().replace(
            'direction = "minimize"', 'direction = "minimize"\nmin = 0\nmax = 8.5\nharness = true'
        )
    )
    task = load_task(root)
    assert (task.metric_min, task.metric_max) == (0.0, 8.5)
    assert task.metric_harness is True and task.noise_min == 0.002
    builtin = load_task(None)
    assert builtin.metric_harness is True
    assert (builtin.metric_min, builtin.metric_max) == (0.0, 8.5)


@pytest.mark.parametrize(("low", "high"), [(1, 1), (2, 1.5)])
def test_an_empty_metric_range_is_named_at_its_max(tmp_path, low, high):
    root = make_task(tmp_path / "t")
    toml = root / "task.toml"
    toml.write_text(
        toml.read_text().replace(
            'direction = "minimize"', f'direction = "minimize"\nmin = {low}\nmax = {high}'
        )
    )
    with pytest.raises(TaskError) as err:
        load_task(root)
    assert str(err.value) == (
        f"{toml}: field 'metric.max': must be greater than metric.min ({low:g}), got {high:g}"
    )

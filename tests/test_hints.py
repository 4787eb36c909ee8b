"""Every hint a refusal gives must be an option that exists (first-hour report: `train --arch llama3
--d-model 48 --n-layers 2 --n-heads 4` advised `--n-kv-heads`, which train lacked).

The `--flag` spellings are collected from the string literals of every `raise` in the package (the
UserError messages and their f-strings), and each is parsed against the click command of the
commands that module's refusals reach (the Typer app's registered commands). Also the default run
folder's name, which spares a user the "holds a different run" refusal, and the study's FLAG when its
recommendations disagree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from llmhist.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for d in ("archs", "cli", "core", "scaling", "train") for p in sorted((ROOT / d).rglob("*.py"))]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")

# which commands a module's refusals reach (by path prefix; the first match wins); a module not
# listed here is checked against every command
REACHES: list[tuple[str, tuple[str, ...] | None]] = [
    ("train/sweep/", ("sweep run", "study", "ablate run")),
    ("train/ablate.py", ("ablate run",)),
    ("train/export.py", ("export",)),
    ("train/bench.py", ("bench",)),
    ("train/hardware.py", None),  # the one hardware table: recommend, show and compare read it too
    ("train/", ("train", "sweep run", "study", "ablate run", "bench")),
    ("cli/sweep_cmd.py", ("sweep run", "sweep status")),
    ("cli/ablate_cmd.py", ("ablate run", "ablate report", "ablate plan", "ablate list")),
    ("cli/train_cmd.py", ("train", "export", "bench")),
]
# flags of other programs a message quotes (not llmhist's)
OTHERS = {"--nproc-per-node", "--nproc_per_node", "--upgrade", "--index-url", "--extra-index-url"}


def commands() -> dict[str, set[str]]:
    """{"sweep run": {"--arch", ...}, ...}: every command's option spellings, from click."""
    out: dict[str, set[str]] = {}

    def walk(cmd, path: str) -> None:
        if hasattr(cmd, "commands"):  # a group (typer's click)
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}".strip())
        else:
            out[path] = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}

    walk(typer.main.get_command(app), "")
    return out


def refusal_flags(path: Path) -> set[str]:
    """The --flag spellings in the string literals of the module's raise statements."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for sub in ast.walk(node.exc):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    found |= set(FLAG.findall(sub.value))
    return found - OTHERS


def reaches(rel: str, cmds: dict[str, set[str]]) -> set[str]:
    for prefix, names in REACHES:
        if rel.startswith(prefix) and names is not None:
            return set().union(*(cmds[n] for n in names if n in cmds))
        if rel.startswith(prefix):
            break
    return set().union(*cmds.values())


def test_the_commands_are_found():
    cmds = commands()
    assert {"train", "sweep run", "ablate run", "fit", "recommend"} <= set(cmds)
    assert "--d-model" in cmds["train"] and "--points" in cmds["sweep run"]


def test_every_flag_a_refusal_suggests_is_an_option_of_a_command_it_reaches():
    cmds = commands()
    missing = {}
    for path in SOURCES:
        rel = path.relative_to(ROOT).as_posix()
        bad = sorted(refusal_flags(path) - reaches(rel, cmds))
        if bad:
            missing[rel] = bad
    assert not missing, f"refusals advise options their commands lack: {missing}"


def test_the_collector_finds_the_n_kv_heads_hint():
    assert "--n-kv-heads" in refusal_flags(ROOT / "archs" / "spec.py")  # the hint of the first-hour report


def test_the_gqa_hint_works_as_given(tmp_path):
    """The refusal's advice, followed literally, is accepted (a dry parse of the config, no training)."""
    from llmhist.train.config import RunError, TrainConfig, resolve

    base = dict(arch="llama3", d_model=48, n_layers=2, out=str(tmp_path / "r"))
    try:
        resolve(TrainConfig(**base, n_heads=4))
        raise AssertionError("expected the GQA refusal")
    except RunError as e:
        assert "--n-kv-heads" in str(e)
    r = resolve(TrainConfig(**base, n_heads=4, n_kv_heads=2))
    assert r.config.n_kv_heads == 2
    result = CliRunner().invoke(app, ["train", "--arch", "llama3", "--d-model", "48", "--n-layers", "2",
                                      "--n-heads", "4", "--n-kv-heads", "3", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "must divide --n-heads 4" in result.output
    assert "No such option" not in result.output


def test_the_default_run_folder_names_data_that_is_not_the_default():
    """First-hour C16: `train --data mytext/` after a stdlib run gets its own folder."""
    from llmhist.cli.train_cmd import default_out

    assert default_out("llama", "nano", None, None, None, 0) == "runs/llama-nano-s0"
    assert default_out("llama", "nano", None, None, None, 0, data="mytext/") == "runs/llama-nano-s0-mytext"
    assert default_out("llama", "nano", None, None, None, 0, data="markov:order=2") == \
        "runs/llama-nano-s0-markov-order=2"
    assert default_out("llama", None, 48, 2, 4, 1, n_kv_heads=2) == "runs/llama-d48-l2-h4-kv2-s1"


def test_the_study_flags_recommendations_that_disagree(monkeypatch, capsys):
    """First-hour C7: the study prints scaling.agreement's disagreement FLAG under its table."""
    import sys
    import types

    from llmhist.cli import study_cmd

    fake = types.ModuleType("llmhist.scaling.agreement")
    fake.disagreement_flag = lambda rows: "planted: the fits disagree"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "llmhist.scaling.agreement", fake)
    study_cmd._print_recommendations([], [])
    assert "FLAG planted: the fits disagree" in " ".join(capsys.readouterr().out.split())
    fake.disagreement_flag = lambda rows: None  # type: ignore[attr-defined]
    study_cmd._print_recommendations([], [])
    assert "FLAG" not in capsys.readouterr().out

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_the_readme_test_command():
    readme_commands = _bash_blocks((ROOT / "README.md").read_text())
    test_commands = [command for command in readme_commands if "pytest" in command]
    assert len(test_commands) == 1
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_commands[0] in ci_lines


def test_quick_start_has_two_commands_and_runs_the_example():
    quick_start = (ROOT / "README.md").read_text().split("## Quick start")[1].split("\n## ")[0]
    commands = _bash_blocks(quick_start)
    assert len(commands) == 2
    example = re.search(r"python (examples/\S+\.py)", commands[0]).group(1)
    assert (ROOT / example).exists()

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


def test_readme_python_snippets_run(tmp_path, monkeypatch):
    """Every ```python block of the README runs as written, with its budgets cut: learn() stops after
    300 steps, episodes after 50 and evaluate_policy plays one (every line runs; nothing learns)."""
    import gymnasium as gym
    from stable_baselines3.common import evaluation

    from sb3_boom import BOOM

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) >= 2
    learn, evaluate = BOOM.learn, evaluation.evaluate_policy
    monkeypatch.setattr(
        BOOM, "learn", lambda self, total_timesteps, *a, **k: learn(self, min(int(total_timesteps), 300), *a, **k)
    )
    monkeypatch.setattr(
        evaluation, "evaluate_policy", lambda model, env, *a, **k: evaluate(model, env, *a, **{**k, "n_eval_episodes": 1})
    )
    make = gym.make
    monkeypatch.setattr(gym, "make", lambda env_id, *a, **k: make(env_id, *a, **{**k, "max_episode_steps": 50}))
    monkeypatch.chdir(tmp_path)  # the snippets save files
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})

"""The README's set-up lines and its Python example work as written."""

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
CI = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()


def test_readme_opens_with_the_two_setup_lines_and_ci_runs_the_test_line():
    block = re.match(r"```bash\n(.*?)\n```", README, re.S)
    assert block, "README must open with a bash block"
    lines = block.group(1).splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("jinter demo") and lines[0].startswith("pip install")
    assert "pytest" in lines[1]
    assert lines[1] in CI.splitlines()


def test_readme_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "duality gap" in out and "matching error" in out
    err = float(re.search(r"matching error (\S+)", out).group(1))
    assert err < 1e-9

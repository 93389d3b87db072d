"""The public Python API (docs/api.md): the documented example runs as written."""
import re
from pathlib import Path

import edgelearn

ROOT = Path(__file__).resolve().parents[1]


def test_the_documented_example_runs(tmp_path, monkeypatch, capsys):
    code = re.search(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").symlink_to(ROOT / "models")
    exec(compile(code, "docs/api.md", "exec"), {})
    assert re.fullmatch(r"epoch \d: \d+\.\d%\n", capsys.readouterr().out)
    assert edgelearn.load_model(tmp_path / "digits-tuned.elm").layers


def test_the_public_names_and_the_version():
    import edgelearn.train                  # the module of the same name does not hide the function
    assert callable(edgelearn.train) and edgelearn.train.__name__ == "train"
    assert edgelearn.__version__ != "unknown"
    for name in edgelearn.__all__:
        assert getattr(edgelearn, name) is not None
    try:
        edgelearn.no_such_thing
    except AttributeError as err:
        assert "no_such_thing" in str(err)
    else:
        raise AssertionError("an unknown attribute must raise AttributeError")

"""The key verbs and authentication through the command line: `edgelearn keys new | provision |
list`, a board booted on a storage provisioned by hand, `--key FILE`, and what a host without the
key gets (the public stats; a push refused with a message that says what to do)."""
import json
from pathlib import Path

import pytest

from edgelearn.cli import main
from firmware_host import keys
from firmware_host.native_board import NativeBoard

ROOT = Path(__file__).resolve().parent.parent
MODEL = str(ROOT / "models" / "digits-stop.json")


@pytest.fixture
def keystore(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELEARN_KEYS_DIR", str(tmp_path / "keystore"))
    return tmp_path / "keystore"


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_new_provision_list_and_a_board_that_answers_to_its_key_only(keystore, tmp_path, capsys):
    code, out, _ = cli(capsys, "keys", "new", "-o", str(tmp_path / "mine.key"))
    assert code == 0 and "device " in out
    mine = keys.load(tmp_path / "mine.key")
    assert (keystore / f"{mine.id_hex}.key").read_text() == mine.text()
    assert oct((tmp_path / "mine.key").stat().st_mode & 0o777) == "0o600"

    storage = tmp_path / "board.storage"
    code, out, _ = cli(capsys, "keys", "provision", str(storage), "--key", str(tmp_path / "mine.key"))
    assert code == 0 and mine.id_hex in out
    code, out, _ = cli(capsys, "keys", "list")
    assert code == 0 and mine.id_hex in out and mine.secret.hex() not in out

    keys.forget(mine)
    with NativeBoard(storage=storage) as nb:              # it reads the key it was flashed with
        keys.forget(nb.key)
        (keystore / f"{mine.id_hex}.key").unlink()        # this host: no key but the file
        code, out, err = cli(capsys, "push", MODEL, "--port", nb.url, "--no-progress")
        assert code == 2 and f"no key for the board {mine.id_hex}" in err and "--key FILE" in err
        code, out, err = cli(capsys, "stats", "--port", nb.url, "--json")
        public = json.loads(out)
        assert code == 0 and "learned" not in public and public["active_crc"] == "00000000"
        code, out, err = cli(capsys, "push", MODEL, "--port", nb.url, "--key", str(tmp_path / "mine.key"),
                             "--no-progress")
        assert code == 0 and "model version 1, committed and active" in out, err
        code, out, err = cli(capsys, "stats", "--port", nb.url, "--key", str(tmp_path / "mine.key"), "--json")
        assert code == 0 and json.loads(out)["commits"] == 1

        other = keys.Key(mine.device_id, bytes(32))         # the right id, the wrong secret
        keys.save(other, tmp_path / "wrong.key")
        code, out, err = cli(capsys, "stats", "--port", nb.url, "--key", str(tmp_path / "wrong.key"))
        assert code == 2 and "refused this host's MAC" in err


def test_a_bad_key_file_is_a_clear_error(keystore, tmp_path, capsys):
    (tmp_path / "bad.key").write_text("not a key\n")
    with NativeBoard() as nb:
        code, _, err = cli(capsys, "stats", "--port", nb.url, "--key", str(tmp_path / "bad.key"))
        assert code == 2 and "not an edgelearn key file" in err
        code, _, err = cli(capsys, "stats", "--port", nb.url, "--key", str(tmp_path / "missing.key"))
        assert code == 2 and "cannot read the key file" in err

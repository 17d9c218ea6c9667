from pathlib import Path

import pytest

from pipeline.io.files import atomic_path, read_json, sha256_file, write_json


def test_atomic_path_leaves_nothing_behind_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "out" / "scores.csv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a file")
        raise RuntimeError("crash midway")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_atomic_path_replaces_the_old_file_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    write_json(target, {"auc": 0.5})
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.write_text("{broken")
        raise ValueError
    assert read_json(target) == {"auc": 0.5}
    write_json(target, {"auc": 0.8, "a": [1, 2]})
    assert read_json(target) == {"a": [1, 2], "auc": 0.8}
    assert target.stat().st_mode & 0o044  # readable by others like any normal file, not mkstemp's 0600


def test_json_is_stable_and_hash_follows_the_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_json(a, {"b": 1, "a": 2})
    write_json(b, {"a": 2, "b": 1})
    assert a.read_bytes() == b.read_bytes()
    assert sha256_file(a) == sha256_file(b)

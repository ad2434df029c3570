"""`make local`'s state directory: owner-only modes, and secret files read only when nobody else could."""

import stat
from pathlib import Path

import pytest

from scripts.local_stack import LocalStackError, prepare_state_dir, read_or_create_secret, tighten_modes


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_an_existing_state_dir_and_its_files_become_owner_only(tmp_path: Path) -> None:
    state = tmp_path / ".local"
    (state / "artifacts" / "1").mkdir(parents=True)
    for name in ("mlflow.db", "mlflow.log", "artifacts/1/model.skops"):
        (state / name).write_text("x")
        (state / name).chmod(0o644)
    for directory in (state, state / "artifacts", state / "artifacts" / "1"):
        directory.chmod(0o755)
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    outside.chmod(0o755)
    (state / "elsewhere").symlink_to(outside)

    prepare_state_dir(state)
    tighten_modes(state)

    assert mode(state) == 0o700
    assert {mode(path) for path in state.rglob("*") if path.is_dir() and not path.is_symlink()} == {0o700}
    assert {mode(path) for path in state.rglob("*") if path.is_file() and not path.is_symlink()} == {0o600}
    assert mode(outside) == 0o755, "a symbolic link's target is left alone"


def test_a_new_secret_is_owner_only_and_read_back(tmp_path: Path) -> None:
    secret, created = read_or_create_secret(tmp_path / "admin_password")
    assert created
    assert mode(tmp_path / "admin_password") == 0o600
    assert read_or_create_secret(tmp_path / "admin_password") == (secret, False)


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604])
def test_a_secret_others_could_read_is_refused_with_the_way_out(tmp_path: Path, loose: int) -> None:
    path = tmp_path / "admin_password"
    path.write_text("s3cret-value")
    path.chmod(loose)
    with pytest.raises(LocalStackError) as refused:
        read_or_create_secret(path)
    assert f"has mode {loose:04o}" in str(refused.value)
    assert f"chmod 600 {path}" in str(refused.value)
    assert "s3cret-value" not in str(refused.value)


def test_a_secret_behind_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "somewhere"
    target.write_text("value")
    target.chmod(0o600)
    (tmp_path / "admin_password").symlink_to(target)
    with pytest.raises(LocalStackError, match="it must be a file"):
        read_or_create_secret(tmp_path / "admin_password")

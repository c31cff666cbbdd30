"""`hublayer fetch` and `hublayer cache ls | verify | rm | prune`, as a user runs them."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from hublayer import cache
from hublayer.cli import main
from hublayer.testing import FileServer


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = int(main(list(argv)) or 0)
    except SystemExit as stop:
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def url(file_server: FileServer) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in {"saved_model.pb": b"g" * 2048, "variables/v.index": b"i"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    file_server.add("/m.tar.gz", buf.getvalue())
    return file_server.url("/m.tar.gz")


def test_fetch_prints_the_local_path(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, _ = run(capsys, "fetch", url)
    assert code == 0
    path = Path(out.strip())
    assert (path / "saved_model.pb").read_bytes() == b"g" * 2048
    assert run(capsys, "fetch", url, "--force")[1].strip() == str(path)


def test_fetch_errors_exit_1_with_the_message(
    capsys: pytest.CaptureFixture[str], file_server: FileServer
) -> None:
    code, out, err = run(capsys, "fetch", file_server.url("/missing.tar.gz"))
    assert code == 1
    assert out == ""
    assert err.startswith("Error: Expected http://127.0.0.1")
    assert "HTTP 404" in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "fetch", "ftp://x/y")
    assert code == 1
    assert "Accepted forms:" in err


def test_ls_shows_a_table_with_sizes_and_last_use(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    assert run(capsys, "cache", "ls")[1].strip() == "The cache is empty."
    run(capsys, "fetch", url)
    code, out, _ = run(capsys, "cache", "ls")
    assert code == 0
    header, rule, row, *_ = out.splitlines()
    assert header.split() == ["key", "size", "files", "last", "used", "handle", "path"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert row.startswith("url/127.0.0.1_")
    assert "2.0 KiB" in row
    assert " s ago" in row
    (entry,) = cache.list_entries()
    assert row.endswith(f"{url}  {entry.path}")
    assert "1 entry, 2.0 KiB in all." in out


def test_verify_reports_damage_and_exits_1(capsys: pytest.CaptureFixture[str], url: str) -> None:
    run(capsys, "fetch", url)
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 0
    assert "1 entry verified, all intact." in out
    (entry,) = cache.list_entries()
    (entry.path / "saved_model.pb").write_bytes(b"G" * 2048)
    code, out, err = run(capsys, "cache", "verify", entry.key)
    assert code == 1
    assert "saved_model.pb: content changed (sha256 mismatch)" in out
    assert "Error: Expected every entry to match its manifest. Received: 1 damaged" in err
    assert f"hublayer fetch {url}" in err
    assert cache.list_entries() == []


def test_rm_by_handle_and_unknown_target(capsys: pytest.CaptureFixture[str], url: str) -> None:
    run(capsys, "fetch", url)
    code, out, _ = run(capsys, "cache", "rm", url)
    assert code == 0
    assert out.startswith("removed url/127.0.0.1_")
    code, _, err = run(capsys, "cache", "rm", "zoo/nothing/1")
    assert code == 1
    assert "hublayer cache ls" in err
    code, _, err = run(capsys, "cache", "rm")
    assert code == 2
    assert "Missing argument" in err


def test_prune_with_durations_and_dry_run(capsys: pytest.CaptureFixture[str], url: str) -> None:
    run(capsys, "fetch", url)
    (entry,) = cache.list_entries()
    manifest = Path(os.environ["HUBLAYER_CACHE_DIR"], "manifests", f"{entry.key}.json")
    os.utime(manifest, (0, 0))
    code, out, _ = run(capsys, "cache", "prune", "--older-than", "30d", "--dry-run")
    assert code == 0
    assert out.startswith(f"would remove {entry.key}")
    assert len(cache.list_entries()) == 1
    code, out, _ = run(capsys, "cache", "prune", "--older-than", "2w")
    assert "removed 1 entry" in out
    assert cache.list_entries() == []
    code, _, err = run(capsys, "cache", "prune", "--older-than", "soon")
    assert code == 2
    assert "such as 30d" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["fetch"],
        ["cache"],
        ["cache", "ls"],
        ["cache", "verify"],
        ["cache", "rm"],
        ["cache", "prune"],
    ],
)
def test_every_command_has_help_with_an_example(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, _ = run(capsys, *argv, "--help")
    assert code == 0
    assert "Example" in out
    assert "hublayer " in out


def test_every_name_cache_ls_prints_resolves(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import shutil

    from hublayer import testing

    model = testing.image_feature_vector(tmp_path / "ifv", image_size=16, dim=8)
    entry = cache.build_entry(
        "zoo/tiny/feature-vector-16/1",
        lambda d: shutil.copytree(model, d, dirs_exist_ok=True),
    )
    code, out, _ = run(capsys, "cache", "ls")
    assert code == 0
    row = out.splitlines()[2]
    assert row.split()[0] == "zoo/tiny/feature-vector-16/1"
    assert "built:zoo/tiny/feature-vector-16/1" in row
    assert row.endswith(str(entry))
    for name in ("zoo/tiny/feature-vector-16/1", "built:zoo/tiny/feature-vector-16/1", str(entry)):
        code, out, err = run(capsys, "inspect", name)
        assert code == 0, err
        assert f"path                   {entry}" in out
        assert "[None, 16, 16, 3]" in out
    code, _, err = run(capsys, "inspect", "built:zoo/missing/1")
    assert code == 1
    assert "cannot be downloaded" in err
    assert "Traceback" not in err

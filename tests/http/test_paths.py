"""Request targets to files: nothing outside the root, whatever the encoding or the links."""

from __future__ import annotations

import os
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastsock.http.paths import HttpError, Root, split_target


@pytest.mark.parametrize(
    ("target", "segments"),
    [
        (b"/", []),
        (b"/a.txt", ["a.txt"]),
        (b"//a/./b/", ["a", "b"]),
        (b"/a%20b.txt", ["a b.txt"]),
        (b"/docs%2Findex.html", ["docs", "index.html"]),  # an encoded slash is a slash
        (b"/%C3%A9t%C3%A9", ["\u00e9t\u00e9"]),
        (b"/%FF", [os.fsdecode(b"\xff")]),  # undecodable bytes survive as surrogates
    ],
)
def test_split_target_decodes_and_normalises(target, segments):
    assert split_target(target) == segments


@pytest.mark.parametrize(
    "target",
    [
        b"/..",
        b"/../etc/passwd",
        b"/a/../../b",
        b"/a/..",
        b"/%2e%2e/x",
        b"/%2E%2E/x",
        b"/.%2e/x",
        b"/a%2f..%2f..%2fetc",
        b"/a/%00b",
        b"/a\x00b",
        b"a.txt",  # not origin-form
        b"*",
        b"",
    ],
)
def test_split_target_refuses_escapes_and_nul(target):
    assert split_target(target) is None


@given(st.binary(max_size=60))
def test_split_target_never_yields_dot_dot_or_separators(raw):
    segments = split_target(b"/" + raw)
    if segments is None:
        return
    for seg in segments:
        assert seg not in ("", ".", "..")
        assert "/" not in seg and "\0" not in seg


@pytest.fixture
def tree(tmp_path):
    """root/ with a file, a subdirectory, links inside and outside, and a secret next door."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "file.txt").write_text("inside")
    (root / "sub" / "deep.txt").write_text("deep")
    secret_dir = tmp_path / "outside"
    secret_dir.mkdir()
    (secret_dir / "secret.txt").write_text("secret")
    (root / "link_in").symlink_to("file.txt")
    (root / "link_in_abs").symlink_to(root / "sub" / "deep.txt")
    (root / "link_out").symlink_to(secret_dir / "secret.txt")
    (root / "link_out_rel").symlink_to("../outside/secret.txt")
    (root / "dirlink_out").symlink_to(secret_dir)
    (root / "loop").symlink_to("loop")
    os.mkfifo(root / "fifo")
    return root


def read(root: Root, *segments: str) -> bytes:
    fd, _ = root.open(list(segments))
    try:
        return os.pread(fd, 100, 0)
    finally:
        os.close(fd)


def status(root: Root, *segments: str) -> int:
    try:
        fd, _ = root.open(list(segments))
    except HttpError as err:
        return err.status
    os.close(fd)
    return 200


def test_root_opens_files_and_links_that_stay_inside(tree):
    root = Root(str(tree))
    assert read(root, "file.txt") == b"inside"
    assert read(root, "sub", "deep.txt") == b"deep"
    assert read(root, "link_in") == b"inside"
    assert read(root, "link_in_abs") == b"deep"


@pytest.mark.parametrize(
    "segments",
    [("link_out",), ("link_out_rel",), ("dirlink_out", "secret.txt"), ("loop",), ("missing",)],
)
def test_root_refuses_links_out_loops_and_missing_files_with_404(tree, segments):
    assert status(Root(str(tree)), *segments) == 404


def test_root_never_opens_a_fifo_or_a_socket(tree):
    # O_NONBLOCK: a FIFO without a writer must not hang the server in open().
    assert status(Root(str(tree)), "fifo") == 404
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tree / "sock"))
        assert status(Root(str(tree)), "sock") == 404
    finally:
        sock.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_root_answers_403_for_unreadable_files(tree):
    (tree / "file.txt").chmod(0)
    assert status(Root(str(tree)), "file.txt") == 403


def test_root_reached_through_a_symlink_still_confines(tmp_path, tree):
    # The served root itself may be a link: "inside" means inside its real path.
    alias = tmp_path / "alias"
    alias.symlink_to(tree)
    root = Root(str(alias))
    assert read(root, "file.txt") == b"inside"
    assert status(root, "link_out") == 404


def test_root_must_be_a_directory(tree):
    with pytest.raises(NotADirectoryError):
        Root(str(tree / "file.txt"))

"""tests.support.dockerignore applies Docker's rules, not gitignore's."""

from __future__ import annotations

from tests.support.dockerignore import DockerIgnore


def test_an_allow_list_keeps_only_what_it_names() -> None:
    ignore = DockerIgnore(["# allow-list", "*", "!src/", "!README.md", "**/__pycache__"])
    assert ignore.excludes(".git/HEAD")
    assert ignore.excludes("tests/test_x.py")
    assert not ignore.excludes("README.md")
    assert not ignore.excludes("src/pkg/mod.py")
    assert ignore.excludes("src/pkg/__pycache__/mod.cpython-311.pyc")


def test_patterns_are_anchored_at_the_context_root_unlike_gitignore() -> None:
    ignore = DockerIgnore(["*.pyc", "docs/*.md", "/build"])
    assert ignore.excludes("top.pyc")
    assert not ignore.excludes("pkg/deep.pyc")  # gitignore would exclude this one
    assert ignore.excludes("docs/a.md")
    assert not ignore.excludes("docs/sub/b.md")  # one "*" stays inside one path element
    assert ignore.excludes("build/out/x.o")  # a matching parent excludes its children


def test_the_last_matching_pattern_decides() -> None:
    ignore = DockerIgnore(["logs", "!logs/keep.txt", "logs/keep.txt"])
    assert ignore.excludes("logs/keep.txt")
    assert not DockerIgnore(["logs", "!logs/keep.txt"]).excludes("logs/keep.txt")
    assert not DockerIgnore(["[ab].txt"]).excludes("c.txt")
    assert DockerIgnore(["[ab].txt", "?.md"]).excludes("x.md")

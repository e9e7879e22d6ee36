from __future__ import annotations

import json
import os
import re
import sysconfig

import pytest

import stethoscope
from stethoscope import files
from stethoscope.files import is_internal


def test_user_excludes_stdlib_site_packages_and_pseudo_files(tmp_path: os.PathLike[str]) -> None:
    assert files.user(os.path.join(str(tmp_path), "app.py"))
    assert not files.user(json.__file__)
    assert not files.user(os.path.join(sysconfig.get_paths()["purelib"], "pkg", "m.py"))
    assert not files.user("<string>")
    assert not files.user("<frozen importlib._bootstrap>")


def test_all_accepts_stdlib_but_not_pseudo_files() -> None:
    assert files.all(json.__file__)
    assert not files.all("<string>")


def test_path_contains_and_contains_regex() -> None:
    accept = files.path_contains("myapp", "other")
    assert accept("/srv/myapp/x.py") and accept("/srv/other/y.py")
    assert not accept("/srv/third/z.py")
    regex = files.contains_regex(r"/app/.*_test\.py$")
    assert regex("/x/app/a_test.py") and not regex("/x/app/a.py")
    assert files.contains_regex(re.compile("app"))("/app.py")


@pytest.mark.parametrize("bad", [(), ("",), (3,)])
def test_path_contains_rejects_bad_parts(bad: tuple[object, ...]) -> None:
    with pytest.raises(TypeError, match="path_contains"):
        files.path_contains(*bad)  # type: ignore[arg-type]


def test_the_monitor_never_shows_its_own_modules_but_shows_the_demo() -> None:
    assert is_internal(stethoscope.__file__)
    from stethoscope.demo import workload

    assert not is_internal(workload.__file__)

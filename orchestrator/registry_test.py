"""Specialist discovery, routing with nearest-language fallback, flags and parser checks."""

import pytest

from orchestrator.registry import (
    RegistryError,
    build_registry,
    discover_specialists,
    language_profile,
    parse_specialist_flags,
)
from orchestrator.sharing import CoalescingModel, SerialModel
from orchestrator.syntax import syntax_check


class NoModel:
    def complete(self, *args):
        raise AssertionError("routing tests never generate")


def test_specialists_are_discovered_from_the_package():
    found = discover_specialists()
    assert "python" in found
    profile = language_profile("python", found)
    assert (profile.extension, profile.line_comment) == (".py", "#")
    assert profile.syntax_ok("x = 1\n") and not profile.syntax_ok("def (")


def test_routes_fall_back_to_the_nearest_language_with_a_note():
    registry = build_registry({"python": NoModel(), "rust": NoModel()}, {})
    assert registry.route("rust").note is None
    go = registry.route("go")
    assert go.entry.profile.name == "rust"
    assert go.note == (
        "no go specialist: go parts are written by the rust specialist (nearest available)"
    )
    assert go.file_name("main.go") == "main.rs"
    java = registry.route("java")
    assert java.entry.profile.name == "rust"
    assert registry.route("sql").entry.profile.name == "python"
    haskell = registry.route("haskell")
    assert haskell.entry.profile.name == "python" and haskell.note.endswith("(the default)")


def test_languages_without_a_specialist_package_use_the_built_in_tables():
    profile = language_profile("go", {})
    assert (profile.extension, profile.line_comment) == (".go", "//")
    assert profile.syntax_ok("package main\nfunc main() {}\n")
    with pytest.raises(RegistryError, match="unknown language 'cobol'"):
        language_profile("cobol", {})


def test_specialist_flags():
    assert {k: str(v) for k, v in parse_specialist_flags(["JS=runs/js", "py=out/p"]).items()} == {
        "javascript": "runs/js",
        "python": "out/p",
    }
    with pytest.raises(RegistryError, match="--specialist 'python': expected LANGUAGE=RUN_DIR"):
        parse_specialist_flags(["python"])


@pytest.mark.parametrize(
    ("language", "good", "bad"),
    [
        ("python", "def f():\n    return 1\n", "def f(:\n"),
        ("sql", "CREATE TABLE t (id INT); SELECT id FROM t;", "CREATE TABL t ("),
        ("rust", "fn main() { let x = 1; }", "fn main( {"),
        ("javascript", "const f = (a) => a + 1;", "function ("),
        ("go", "package main\nfunc main() {}\n", "package main\nfunc main( {"),
    ],
)
def test_parser_table(language, good, bad):
    check = syntax_check(language)
    assert check(good) and not check(bad)


def test_models_are_shared_serially_or_coalescing():
    serial = build_registry({"python": NoModel()}, {})
    coalescing = build_registry({"python": NoModel()}, {}, coalesce_prompts=8)
    assert isinstance(serial.entries["python"].model, SerialModel)
    assert isinstance(coalescing.entries["python"].model, CoalescingModel)
    assert coalescing.entries["python"].model.max_prompts == 8

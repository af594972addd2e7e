"""Language discovery, routing with nearest-language fallback, flags and parser checks."""

import pytest

from orchestrator.endpoint_completer import EndpointCompleter, EndpointSpec
from orchestrator.languages import canonical_language, known_languages
from orchestrator.registry import (
    RegistryError,
    build_registry,
    known_language,
    parse_specialist_flags,
)
from orchestrator.sharing import CoalescingModel, SerialModel
from specialists.languages import discover


class NoModel:
    def complete(self, request):
        raise AssertionError("routing tests never generate")


def test_specialist_languages_come_from_their_packages():
    for name, language in discover().items():
        known = known_languages()[name]
        assert known.extensions == language.extensions
        assert known.line_comment == language.line_comment
        assert known.syntax_ok == language.syntax_ok and known.nearest == language.nearest
    assert known_languages()["js"].extensions == (".js", ".mjs", ".cjs", ".jsx")
    python = known_language("python")
    assert python.syntax_ok("x = 1\n") and not python.syntax_ok("def (")


def test_routes_fall_back_to_the_nearest_language_with_a_note():
    registry = build_registry({"python": NoModel(), "rust": NoModel()})
    assert registry.route("rust").note is None
    go = registry.route("go")
    assert go.entry.language.name == "rust"
    assert go.note == (
        "no go specialist: go parts are written by the rust specialist (nearest available)"
    )
    assert go.file_name("main.go") == "main.rs"
    java = registry.route("java")
    assert java.entry.language.name == "rust"
    assert registry.route("sql").entry.language.name == "python"
    haskell = registry.route("haskell")
    assert haskell.entry.language.name == "python" and haskell.note.endswith("(the default)")


def test_languages_without_a_specialist_package_use_the_orchestrators_table():
    go = known_language("golang")
    assert (go.name, go.extensions[0], go.line_comment) == ("go", ".go", "//")
    assert go.syntax_ok("package main\nfunc main() {}\n")
    with pytest.raises(RegistryError, match="unknown language 'cobol'"):
        known_language("cobol")


def test_names_and_aliases_are_canonical():
    names = ("JavaScript", "node.js", "py", "C++", "Rust")
    assert [canonical_language(name) for name in names] == ["js", "js", "python", "cpp", "rust"]
    assert canonical_language("Klingon") == "klingon"


def test_specialist_flags():
    assert {k: str(v) for k, v in parse_specialist_flags(["JS=runs/js", "py=out/p"]).items()} == {
        "js": "runs/js",
        "python": "out/p",
    }
    with pytest.raises(RegistryError, match="--specialist 'python': expected LANGUAGE=RUN_DIR"):
        parse_specialist_flags(["python"])


def test_specialist_flags_take_endpoint_urls():
    assert parse_specialist_flags(["py=http://gpu:8000/v1#python", "sql=https://h/v1/"]) == {
        "python": EndpointSpec("http://gpu:8000/v1", "python"),
        "sql": EndpointSpec("https://h/v1"),
    }
    with pytest.raises(RegistryError, match="^--specialist 'js=http://': .*not an http"):
        parse_specialist_flags(["js=http://"])


@pytest.mark.parametrize(
    ("language", "good", "bad"),
    [
        ("python", "def f():\n    return 1\n", "def f(:\n"),
        ("sql", "CREATE TABLE t (id INT); SELECT id FROM t;", "CREATE TABL t ("),
        ("rust", "fn main() { let x = 1; }", "fn main( {"),
        ("js", "const f = (a) => a + 1;", "function ("),
        ("go", "package main\nfunc main() {}\n", "package main\nfunc main( {"),
    ],
)
def test_syntax_checks(language, good, bad):
    check = known_language(language).syntax_ok
    assert check(good) and not check(bad)


def test_models_are_shared_serially_or_coalescing():
    serial = build_registry({"python": NoModel()})
    coalescing = build_registry({"python": NoModel()}, coalesce_prompts=8)
    assert isinstance(serial.entries["python"].model, SerialModel)
    assert isinstance(coalescing.entries["python"].model, CoalescingModel)
    assert coalescing.entries["python"].model.max_prompts == 8
    endpoint = EndpointCompleter("http://gpu:8000/v1", "python")
    # An endpoint's server batches concurrent requests itself: it is not serialised or merged.
    assert (
        build_registry({"python": endpoint}, coalesce_prompts=8).entries["python"].model is endpoint
    )

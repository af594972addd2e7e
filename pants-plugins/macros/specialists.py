# Pants BUILD-file macros (a prelude: [GLOBAL].build_file_prelude_globs in pants.toml).


def specialist_language(**kwargs):
    """The targets of one language's package, specialists/<name>/: its sources, its tests and
    its commands, `:prepare`, `:train`, `:eval` and `:sft` (the generic specialists/cli.py with
    `COMMAND --language <name>` frozen in).

    The package's language.py belongs to `specialists:languages` (every language's module), so
    the generic commands and the orchestrator depend on every language without listing them.
    """
    name = build_file_dir().name
    python_sources(sources=["*.py", "!*_test.py", "!language.py"], **kwargs)
    python_tests(name="tests", dependencies=["specialists:languages"])
    for command in ("prepare", "train", "eval", "sft"):
        pex_binary(
            name=command,
            entry_point="specialists.cli:main",
            args=[command, "--language", name],
            dependencies=["specialists:languages"],
            execution_mode="venv",
        )

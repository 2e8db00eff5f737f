"""answers.py: the answers the other tools compare, read once here.

load(d) gives {"PyTorch": eval.jsonl's answers, "f32": ..., "q8_0": ...,
"q4_0": ...} for a model directory d (ship.sh's TSVs for palid), each a
list of dict(seed, task, answer, got) in the held-out datasets' order,
after checking that all four list the same questions."""
import json, os

# Tasks in the docs' table order; SINGLE are the single-frame ones.
TASKS = ["caption", "color", "count", "exists", "where", "ocr", "direction", "enter", "leave"]
SINGLE = set(TASKS[:6])
QUANTS = ["f32", "q8_0", "q4_0"]


def read_tsv(path):
    """evalpalid -v's lines: seed, task, want and got (Go-quoted)."""
    rows = []
    for line in open(path):
        p = line.rstrip("\n").split("\t")
        if len(p) == 4:
            rows.append(dict(seed=int(p[0]), task=p[1], answer=json.loads(p[2]), got=json.loads(p[3])))
    return rows


def load(d):
    cols = {"PyTorch": [json.loads(l) for l in open(os.path.join(d, "eval.jsonl"))]}
    for q in QUANTS:
        cols[q] = read_tsv(os.path.join(d, q + ".tsv"))
    pt = cols["PyTorch"]
    for q, rows in cols.items():  # same questions in the same order, or nothing compares
        if len(rows) != len(pt) or any((a["seed"], a["task"], a["answer"]) != (b["seed"], b["task"], b["answer"])
                                       for a, b in zip(pt, rows)):
            raise SystemExit(f"{d}: {q}'s answers are not to PyTorch's questions")
    return cols


def right(rows):
    return sum(r["got"] == r["answer"] for r in rows)

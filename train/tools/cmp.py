"""cmp.py work/NAME: accuracy per task, PyTorch (eval.jsonl) against palid
F32, Q8_0 and Q4_0 (ship.sh's TSVs), answers identical to PyTorch's, and the
Q8_0 differences from PyTorch in points (the target: within 1 on every task)."""
import collections, json, os, sys

d = sys.argv[1]
pt = [json.loads(l) for l in open(os.path.join(d, "eval.jsonl"))]
cols = {"PyTorch": pt}
for q in ["f32", "q8_0", "q4_0"]:
    rows = []
    for l in open(os.path.join(d, q + ".tsv")):
        p = l.rstrip("\n").split("\t")
        if len(p) != 4:
            continue
        rows.append(dict(seed=int(p[0]), task=p[1], answer=json.loads(p[2]), got=json.loads(p[3])))
    cols[q] = rows
# Same questions in the same order, or the comparison means nothing.
for q, rows in cols.items():
    assert len(rows) == len(pt), (q, len(rows), len(pt))
    for a, b in zip(pt, rows):
        assert (a["seed"], a["task"], a["answer"]) == (b["seed"], b["task"], b["answer"]), (q, a, b)
tasks = sorted({p["task"] for p in pt}, key=lambda t: ["caption", "color", "count", "exists", "where", "ocr", "direction", "enter", "leave"].index(t) if t in ["caption", "color", "count", "exists", "where", "ocr", "direction", "enter", "leave"] else 99)
print("| task | n | " + " | ".join(cols) + " |")
worst = 0
for t in tasks:
    accs = []
    for q, rows in cols.items():
        r = [p for p in rows if p["task"] == t]
        accs.append(100.0 * sum(p["got"] == p["answer"] for p in r) / len(r))
    worst = max(worst, abs(accs[2] - accs[0]))
    print(f"| {t} | {len([p for p in pt if p['task'] == t])} | " + " | ".join(f"{a:.1f}" for a in accs) + " |")
print("| right | " + str(len(pt)) + " | " + " | ".join(str(sum(p["got"] == p["answer"] for p in rows)) for rows in cols.values()) + " |")
print("| identical to PyTorch | | | " + " | ".join(str(sum(a["got"] == b["got"] for a, b in zip(pt, rows))) for q, rows in cols.items() if q != "PyTorch") + " |")
single = {"caption", "color", "count", "exists", "where", "ocr"}
for q, rows in cols.items():
    s = [p for p in rows if p["task"] in single]
    c = [p for p in rows if p["task"] not in single]
    print(q, "single %.1f" % (100.0 * sum(p["got"] == p["answer"] for p in s) / len(s)),
          "clips %.1f" % (100.0 * sum(p["got"] == p["answer"] for p in c) / len(c)))
print("Q8_0 largest difference from PyTorch on a task: %.2f points (%s)" % (worst, "met" if worst <= 1 else "NOT met"))

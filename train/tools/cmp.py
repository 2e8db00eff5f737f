"""cmp.py work/NAME: accuracy per task, PyTorch (eval.jsonl) against palid
F32, Q8_0 and Q4_0 (ship.sh's TSVs), answers identical to PyTorch's, and the
Q8_0 differences from PyTorch in points (the target: within 1 on every task)."""
import sys

from answers import SINGLE, TASKS, load, right

cols = load(sys.argv[1])
pt = cols["PyTorch"]
pct = lambda rows: 100.0 * right(rows) / len(rows)
print("| task | n | " + " | ".join(cols) + " |")
worst = 0
for t in [t for t in TASKS if any(r["task"] == t for r in pt)]:
    accs = [pct([r for r in rows if r["task"] == t]) for rows in cols.values()]
    worst = max(worst, abs(accs[2] - accs[0]))
    print(f"| {t} | {sum(r['task'] == t for r in pt)} | " + " | ".join(f"{a:.1f}" for a in accs) + " |")
print(f"| right | {len(pt)} | " + " | ".join(str(right(rows)) for rows in cols.values()) + " |")
print("| identical to PyTorch | | | " + " | ".join(
    str(sum(a["got"] == b["got"] for a, b in zip(pt, rows))) for q, rows in cols.items() if q != "PyTorch") + " |")
for q, rows in cols.items():
    print(q, "single %.1f" % pct([r for r in rows if r["task"] in SINGLE]),
          "clips %.1f" % pct([r for r in rows if r["task"] not in SINGLE]))
print("Q8_0 largest difference from PyTorch on a task: %.2f points (%s)" % (worst, "met" if worst <= 1 else "NOT met"))

"""row.py NAME...: a docs table row per model from its held-out
(work/NAME/eval.jsonl) and validation (work/val/NAME/eval.jsonl) answers:
right, single-frame %, clip %, direction %, vertical directions right."""
import json, os, sys

from answers import SINGLE, right

here = os.path.dirname(os.path.abspath(__file__))


def cells(path):
    if not os.path.exists(path):
        return ["-"] * 5
    p = [json.loads(l) for l in open(path)]
    pct = lambda rs: "%.1f" % (100.0 * right(rs) / len(rs))
    single = [r for r in p if r["task"] in SINGLE]
    clips = [r for r in p if r["task"] not in SINGLE]
    dirs = [r for r in p if r["task"] == "direction"]
    vert = [r for r in dirs if r["answer"] in ("up", "down")]
    return [str(right(p)), pct(single), pct(clips), pct(dirs), f"{right(vert)} of {len(vert)}"]


for name in sys.argv[1:]:
    row = cells(os.path.join(here, "../work", name, "eval.jsonl"))
    row += cells(os.path.join(here, "../work/val", name, "eval.jsonl"))
    print(f"| `{name}` | " + " | ".join(row) + " |")

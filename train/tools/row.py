"""row.py NAME...: a docs table row per model from its held-out
(work/NAME/eval.jsonl) and validation (work/val/NAME/eval.jsonl) answers:
right, single-frame %, clip %, direction %, vertical directions right."""
import json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
SINGLE = {"caption", "color", "count", "exists", "where", "ocr"}


def cells(path):
    if not os.path.exists(path):
        return ["-"] * 5
    p = [json.loads(l) for l in open(path)]
    ok = lambda rs: sum(r["got"] == r["answer"] for r in rs)
    pct = lambda rs: "%.1f" % (100.0 * ok(rs) / len(rs))
    single = [r for r in p if r["task"] in SINGLE]
    clips = [r for r in p if r["task"] not in SINGLE]
    dirs = [r for r in p if r["task"] == "direction"]
    vert = [r for r in dirs if r["answer"] in ("up", "down")]
    return [str(ok(p)), pct(single), pct(clips), pct(dirs), f"{ok(vert)} of {len(vert)}"]


for name in sys.argv[1:]:
    row = cells(os.path.join(here, "../work", name, "eval.jsonl"))
    row += cells(os.path.join(here, "../work/val", name, "eval.jsonl"))
    print(f"| `{name}` | " + " | ".join(row) + " |")

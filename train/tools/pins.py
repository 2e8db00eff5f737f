"""pins.py work/NAME: each pinned question of cmd/palid/demo_test.go
(demoCases) and whether PyTorch (eval.jsonl) and palid F32, Q8_0 and Q4_0
(ship.sh's TSVs) answer it right; exits 1 if any is wrong anywhere."""
import json, os, re, sys

d = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
src = open(os.path.join(here, "../../cmd/palid/demo_test.go")).read()
pins = re.findall(r'\{(\d+), \d+, "([^"]*)", "([^"]*)"\}', src)
cols = {"PyTorch": [json.loads(l) for l in open(os.path.join(d, "eval.jsonl"))]}
for q in ["f32", "q8_0", "q4_0"]:
    cols[q] = []
    for l in open(os.path.join(d, q + ".tsv")):
        p = l.rstrip("\n").split("\t")
        if len(p) == 4:
            cols[q].append(dict(seed=int(p[0]), task=p[1], answer=json.loads(p[2]), got=json.loads(p[3])))
# eval.jsonl and the TSVs list the questions in the datasets' order (no prompt).
allq = []
for name in ["scenes", "clips"]:
    allq += [json.loads(l) for l in open(os.path.join(here, "../work/heldout", name, "questions.jsonl"))]
bad = 0
for seed, prompt, want in pins:
    seed = int(seed)
    i = next((k for k, r in enumerate(allq) if r["seed"] == seed and r["prompt"] == prompt), None)
    if i is None:
        print(seed, prompt, "not in the held-out subset")
        bad += 1
        continue
    got = {q: rows[i]["got"] for q, rows in cols.items()}
    ok = all(g == want for g in got.values())
    bad += not ok
    print("ok " if ok else "BAD", seed, prompt, want, got if not ok else "")
sys.exit(1 if bad else 0)

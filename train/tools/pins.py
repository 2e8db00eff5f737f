"""pins.py work/NAME: each pinned question of cmd/palid/demo_test.go
(demoCases) and whether PyTorch (eval.jsonl) and palid F32, Q8_0 and Q4_0
(ship.sh's TSVs) answer it right; exits 1 if any is wrong anywhere."""
import json, os, re, sys

from answers import load

here = os.path.dirname(os.path.abspath(__file__))
src = open(os.path.join(here, "../../cmd/palid/demo_test.go")).read()
pins = re.findall(r'\{(\d+), \d+, "([^"]*)", "([^"]*)"\}', src)
cols = load(sys.argv[1])
# The answers list the held-out questions in the datasets' order, without
# the prompt: a pin's index comes from the datasets.
questions = [json.loads(line) for name in ["scenes", "clips"]
             for line in open(os.path.join(here, "../work/heldout", name, "questions.jsonl"))]
index = {}
for i, r in enumerate(questions):
    index.setdefault((r["seed"], r["prompt"]), i)
bad = 0
for seed, prompt, want in pins:
    i = index.get((int(seed), prompt))
    if i is None:
        print(seed, prompt, "not in the held-out subset")
        bad += 1
        continue
    got = {q: rows[i]["got"] for q, rows in cols.items()}
    ok = all(g == want for g in got.values())
    bad += not ok
    print("ok " if ok else "BAD", seed, prompt, want, got if not ok else "")
sys.exit(1 if bad else 0)

"""cands.py work/NAME TASK [ANSWER]: held-out seeds whose first TASK question
(answer ANSWER, if given) PyTorch and palid F32, Q8_0 and Q4_0 all answer
right, for re-pinning cmd/palid's tests when a new model misses a pin."""
import json, os, sys

d, task = sys.argv[1], sys.argv[2]
want = sys.argv[3] if len(sys.argv) > 3 else None
cols = [[json.loads(l) for l in open(os.path.join(d, "eval.jsonl"))]]
for q in ["f32", "q8_0", "q4_0"]:
    rows = []
    for l in open(os.path.join(d, q + ".tsv")):
        p = l.rstrip("\n").split("\t")
        if len(p) == 4:
            rows.append(dict(seed=int(p[0]), task=p[1], answer=json.loads(p[2]), got=json.loads(p[3])))
    cols.append(rows)
seen = set()
for i, r in enumerate(cols[0]):
    if r["task"] != task or r["seed"] in seen:
        continue
    seen.add(r["seed"])  # the seed's first question of the task only
    if (want is None or r["answer"] == want) and all(c[i]["got"] == r["answer"] for c in cols):
        print(r["seed"], r["answer"])

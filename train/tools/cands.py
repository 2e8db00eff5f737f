"""cands.py work/NAME TASK [ANSWER]: held-out seeds whose first TASK question
(answer ANSWER, if given) PyTorch and palid F32, Q8_0 and Q4_0 all answer
right, for re-pinning cmd/palid's tests when a new model misses a pin."""
import sys

from answers import load

task = sys.argv[2]
want = sys.argv[3] if len(sys.argv) > 3 else None
cols = list(load(sys.argv[1]).values())
seen = set()
for i, r in enumerate(cols[0]):
    if r["task"] != task or r["seed"] in seen:
        continue
    seen.add(r["seed"])  # the seed's first question of the task only
    if (want is None or r["answer"] == want) and all(c[i]["got"] == r["answer"] for c in cols):
        print(r["seed"], r["answer"])

import os; os.environ["HF_HUB_OFFLINE"]="1"
import torch, numpy as np, collections
torch.set_num_threads(2)
from aot.models.defender import load_defender
from aot.models.evaluation import eval_items
from aot.models.prompt import format_prompt, extract_choice
d = load_defender("base")
items = eval_items(400, "simple", seed=3)
outs = d.generate([i.image for i in items], [format_prompt(i.question) for i in items], max_new_tokens=12, batch_size=100)
st = collections.defaultdict(lambda: [0,0,0,0])
for o, it in zip(outs, items):
    q = it.question; c = o[0]
    word = c.split("\\boxed")[0].strip()
    key = q.kind + ":" + (q.spec.get("attr") or q.spec.get("negative") or ("pos" if q.kind=="existence" else "") or "")
    s = st[key]; s[0]+=1; s[1]+= word==q.answer_text; s[2]+= extract_choice(c,q.options)==q.answer
    s[3]+= (word in q.options and extract_choice(c,q.options)==LETTERS[q.options.index(word)]) if (LETTERS:="ABCD") else 0
for k,v in sorted(st.items()): print(f"{k:22s} n={v[0]:3d} word={v[1]/v[0]:.2f} final={v[2]/v[0]:.2f} letter_consistent={v[3]/v[0]:.2f}")
print(outs[:5])

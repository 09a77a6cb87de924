import os, time, json; os.environ["HF_HUB_OFFLINE"]="1"
import torch, numpy as np, torch.nn.functional as F
torch.set_num_threads(2); torch.manual_seed(0)
from aot.models.registry import build_tiny
from aot.world.types import COLOR_NAMES, SHAPES
LR=float(os.environ.get("LR","1e-3")); STEPS=int(os.environ.get("STEPS","300")); AUX=float(os.environ.get("AUX","1")); LAYER=int(os.environ.get("LAYER","2"))
model, proc = build_tiny("tiny-qwen2.5-vl", seed=0); tok=proc.tokenizer
from transformers import Qwen2Config, Qwen2ForCausalLM
tc=model.config.text_config
model=Qwen2ForCausalLM(Qwen2Config(vocab_size=tc.vocab_size,hidden_size=192,intermediate_size=512,num_hidden_layers=4,num_attention_heads=6,num_key_value_heads=6,tie_word_embeddings=True))
head=torch.nn.Linear(192,8)
rng=np.random.default_rng(0)
def ex():
    n=int(rng.integers(1,4)); cols=rng.choice(8,n,replace=False); shp=rng.choice(len(SHAPES),n,replace=False)
    k=int(rng.integers(n))
    scene=", ".join(f"{COLOR_NAMES[c]} {SHAPES[s]}" for c,s in zip(cols,shp))
    return f"Scene: {scene}\nWhat colour is the {SHAPES[shp[k]]}? Answer:", f" {COLOR_NAMES[cols[k]]}", cols[k]
opt=torch.optim.AdamW(list(model.parameters())+list(head.parameters()), lr=LR)
t0=time.time()
for step in range(STEPS):
    exs=[ex() for _ in range(32)]
    b=tok([p+c for p,c,_ in exs],padding=True,return_tensors="pt",add_special_tokens=False)
    out=model(input_ids=b["input_ids"],attention_mask=b["attention_mask"],output_hidden_states=True)
    lg=out.logits[:,-2]; tg=b["input_ids"][:,-1]
    loss=F.cross_entropy(lg,tg)
    # noun token = 5 from the end: [noun, ?, Ġ, Answer, :, Ġcolour]
    h=out.hidden_states[LAYER][:,-6]
    al=F.cross_entropy(head(h), torch.tensor([c for *_,c in exs]))
    opt.zero_grad(); (loss+AUX*al).backward(); opt.step()
    if (step+1)%50==0: print(AUX, step+1, round(time.time()-t0,1), round(float(loss),3), round(float(al),3), float((lg.argmax(-1)==tg).float().mean()), flush=True)

import os, time, json; os.environ["HF_HUB_OFFLINE"]="1"
import torch, numpy as np, torch.nn.functional as F
torch.set_num_threads(2); torch.manual_seed(0)
from aot.models.registry import build_tiny
from aot.models.defender import Defender
from aot.world.types import COLOR_NAMES, SHAPES
ARCH=os.environ.get("ARCH","vl"); LR=float(os.environ.get("LR","1e-3")); STEPS=int(os.environ.get("STEPS","300"))
model, proc = build_tiny("tiny-qwen2.5-vl", seed=0); tok=proc.tokenizer
if ARCH=="gpt2":
    from transformers import GPT2Config, GPT2LMHeadModel
    model=GPT2LMHeadModel(GPT2Config(vocab_size=proc.tokenizer.vocab_size+64,n_embd=192,n_layer=4,n_head=6,n_positions=256))
if ARCH=="llama":
    from transformers import LlamaConfig, LlamaForCausalLM
    model=LlamaForCausalLM(LlamaConfig(vocab_size=len(proc.tokenizer),hidden_size=192,intermediate_size=512,num_hidden_layers=4,num_attention_heads=6,num_key_value_heads=6,tie_word_embeddings=True,max_position_embeddings=256))
if ARCH=="plain":
    from transformers import Qwen2Config, Qwen2ForCausalLM
    tc=model.config.text_config
    model=Qwen2ForCausalLM(Qwen2Config(vocab_size=tc.vocab_size,hidden_size=192,intermediate_size=512,num_hidden_layers=4,num_attention_heads=6,num_key_value_heads=6,tie_word_embeddings=True))
MIM=float(os.environ.get("MIM","0"))
if MIM:
    lm = model.model.language_model if hasattr(model.model,"language_model") else model.model
    for layer in lm.layers:
        a=layer.self_attn
        with torch.no_grad():
            w=torch.randn_like(a.q_proj.weight)*MIM/ (a.q_proj.weight.shape[1]**0.5)
            a.q_proj.weight.copy_(w); a.k_proj.weight.copy_(w)
            if a.q_proj.bias is not None: a.q_proj.bias.zero_(); a.k_proj.bias.zero_()
rng=np.random.default_rng(0)
def ex():
    n=int(os.environ.get("NOBJ","0")) or int(rng.integers(1,4)); cols=rng.choice(8,n,replace=False); shp=rng.choice(len(SHAPES),n,replace=False)
    k=int(rng.integers(n))
    scene=", ".join(f"{COLOR_NAMES[c]} {SHAPES[s]}" for c,s in zip(cols,shp))
    if os.environ.get("IND"): return f"Scene: {scene}\nWhat colour is the {SHAPES[shp[k]]}? Answer: {SHAPES[shp[k]]}", f" {COLOR_NAMES[cols[k]]}"
    return f"Scene: {scene}\nWhat colour is the {SHAPES[shp[k]]}? Answer:", f" {COLOR_NAMES[cols[k]]}"
opt=torch.optim.AdamW(model.parameters(), lr=LR)
t0=time.time()
for step in range(STEPS):
    exs=[ex() for _ in range(int(os.environ.get('BS','32')))]
    b=tok([p+c for p,c in exs],padding=True,return_tensors="pt",add_special_tokens=False)
    out=model(input_ids=b["input_ids"],attention_mask=b["attention_mask"])
    lg=out.logits[:,-2]; tg=b["input_ids"][:,-1]
    loss=F.cross_entropy(lg,tg)
    opt.zero_grad(); loss.backward(); opt.step()
    if (step+1)%50==0: print(ARCH, step+1, round(time.time()-t0,1), round(float(loss),3), float((lg.argmax(-1)==tg).float().mean()), flush=True)

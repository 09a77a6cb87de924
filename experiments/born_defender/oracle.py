import os, sys, time, math, json; os.environ["HF_HUB_OFFLINE"]="1"
import torch, numpy as np, torch.nn.functional as F
torch.set_num_threads(2); torch.manual_seed(0)
from aot.pretrain import *
from aot.pretrain import collate, dense_labels, make_example, quick_eval
from aot.models.registry import build_tiny, TINY_MODELS
from aot.models.defender import Defender
from aot.models.evaluation import eval_items, TRAIN_SEEDS
from aot.models.tokenizer import EOS
from aot.models.prompt import format_prompt, extract_choice
MODE=os.environ.get("MODE","oracle"); LR=float(os.environ.get("LR","1e-3")); BS=int(os.environ.get("BS","32")); MIN=float(os.environ.get("MIN","8"))
model, proc = build_tiny("tiny-qwen2.5-vl", seed=0)
d = Defender(model, proc, "qwen2_5_vl"); tok=d.tokenizer
emb = model.get_input_embeddings()
ids = [torch.tensor([tok.convert_tokens_to_ids("Ġ"+w) for w in vals]) for vals in (COLOR_LIST, list(SHAPES), list(MATERIALS), SIZE_LIST)]
H=192
posx = torch.nn.Parameter(torch.randn(8,H)*0.02); posy=torch.nn.Parameter(torch.randn(8,H)*0.02); empty=torch.nn.Parameter(torch.randn(H)*0.02)
cur = {}
from transformers.modeling_outputs import BaseModelOutputWithPooling as Out
def oracle(pixel_values=None, image_grid_thw=None, **kw):
    n=image_grid_thw.shape[0]; o=cur.get("off",0); lab = cur["lab"][o:o+n]; cur["off"]=o+n
    E = emb.weight
    has = lab[...,0]>=0
    l = lab.clamp(min=0)
    f = E[ids[0][l[...,0]]]+E[ids[1][l[...,1]]]+E[ids[2][l[...,2]]]+E[ids[3][l[...,3]]]+posx[l[...,4]]+posy[l[...,5]]
    f = torch.where(has[...,None], f, empty.expand_as(f))
    return Out(pooler_output=tuple(f[i] for i in range(f.shape[0])))
model.model.get_image_features = oracle
params = list(model.parameters())+[posx,posy,empty]
opt = torch.optim.AdamW(params, lr=LR, betas=(0.9,0.98), weight_decay=0.01)
evalset = eval_items(256, "simple", seed=90)
rng = np.random.default_rng(0); t0=time.time(); step=0; comp={}
def ev():
    if MODE=="text":
        model.eval(); ok=[]
        for i0 in range(0,len(evalset),64):
            its=evalset[i0:i0+64]
            texts=[tok.apply_chat_template([{"role":"user","content":[{"type":"text","text":"Scene:"+caption_completion(i.scene)+"\n"+format_prompt(i.question)}]}],add_generation_prompt=True,tokenize=False) for i in its]
            b=tok(texts,padding=True,return_tensors="pt",add_special_tokens=False)
            with torch.no_grad(): g=model.generate(**b,max_new_tokens=10,do_sample=False)
            outs=tok.batch_decode(g[:,b["input_ids"].shape[1]:],skip_special_tokens=True)
            ok+= [ (extract_choice(o,i.question.options)==i.question.answer, i.question.kind) for o,i in zip(outs,its)]
        model.train(); r={"eval/acc":float(np.mean([a for a,_ in ok]))}
        for k in ("attribute","count","existence","relation"): r["eval/acc_"+k]=float(np.mean([a for a,kk in ok if kk==k]))
        return r
    model.eval()
    cur["lab"]=torch.from_numpy(np.stack([dense_labels(i.scene,4) for i in evalset])); cur["off"]=0
    r = quick_eval(d, evalset); model.train(); return r
while time.time()-t0 < MIN*60:
    exs=[]
    while len(exs)<BS:
        e = make_example(int(rng.integers(*TRAIN_SEEDS)))
        if e: exs.append(e)
    n=[comp.setdefault(e.completion, len(tok(e.completion+EOS, add_special_tokens=False)["input_ids"])) for e in exs]
    if MODE=="text":
        texts=[tok.apply_chat_template([{"role":"user","content":[{"type":"text","text":"Scene:"+caption_completion(e.scene)+"\n"+e.prompt}]}],add_generation_prompt=True,tokenize=False)+e.completion+EOS for e in exs]
        b=dict(tok(texts,padding=True,return_tensors="pt",add_special_tokens=False)); labels=torch.full_like(b["input_ids"],-100); L=labels.shape[1]
        for i,k in enumerate(n): labels[i,L-k:]=b["input_ids"][i,L-k:]
    else:
        b = collate(d, exs, n); labels=b.pop("labels")
    cur["lab"]=torch.from_numpy(np.stack([dense_labels(e.scene,4) for e in exs])); cur["off"]=0
    warm=min(1,(step+1)/100)
    for g in opt.param_groups: g["lr"]=LR*warm
    out=model(**b); lg=out.logits[:,:-1]; tg=labels[:,1:]
    loss=F.cross_entropy(lg.reshape(-1,lg.shape[-1]), tg.reshape(-1), ignore_index=-100)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params,1.0); opt.step(); step+=1
    if step%100==0:
        r=ev(); print(json.dumps({"step":step,"min":round((time.time()-t0)/60,2),"loss":round(float(loss),3)}|{k:round(v,3) for k,v in r.items()}),flush=True)
print("seqlen", b["input_ids"].shape)

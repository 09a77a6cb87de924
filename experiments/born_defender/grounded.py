"""Stage-2 probe: aot_vlm question training with grounding supervision of two attention heads.
Head GH of layer LA, at the last prompt token (where the answer word is predicted), is trained
to attend to the visual cells of the question's target objects; head GH of layer LB, at the
token before the boxed letter, to the correct option's line in the prompt."""
import os, time, json; os.environ["HF_HUB_OFFLINE"] = "1"
import torch, numpy as np, torch.nn.functional as F
torch.set_num_threads(int(os.environ.get("T", "2"))); torch.manual_seed(0)
from aot.models import load_defender, build_tiny, Defender
from aot.models.tokenizer import EOS
from aot.models.evaluation import eval_items, TRAIN_SEEDS, question_for
from aot.pretrain import collate, dense_labels, make_example, quick_eval, DenseHeads, COLOR_LIST, SIZE_LIST
from aot.world import SHAPES, MATERIALS
LR = float(os.environ.get("LR", "1e-3")); BS = int(os.environ.get("BS", "32")); MIN = float(os.environ.get("MIN", "6"))
EV = int(os.environ.get("EV", "150")); AUX = float(os.environ.get("AUX", "1")); GW = float(os.environ.get("GW", "1"))
LA, LB, GH = int(os.environ.get("LA", "2")), int(os.environ.get("LB", "3")), int(os.environ.get("GH", "5")); GH2 = int(os.environ.get("GH2", "4"))
INIT = os.environ.get("INIT", "")
d = load_defender(INIT) if INIT else Defender(*build_tiny("tiny-aot-vlm"), "aot_vlm")
m, p, tok = d.model, d.processor, d.tokenizer; m.train()
emb = m.get_input_embeddings(); H = m.config.hidden_size
wid = [torch.tensor([tok.convert_tokens_to_ids("Ġ" + w) for w in vals]) for vals in (COLOR_LIST, list(SHAPES), list(MATERIALS), SIZE_LIST)]
heads = DenseHeads(H, wid)
if INIT and os.path.exists(INIT + "/heads.pt"):
    heads.load_state_dict(torch.load(INIT + "/heads.pt", weights_only=True))
feats = {}
m.model.visual.register_forward_hook(lambda mod, a, out: feats.__setitem__("f", out))
attA, attB = m.model.layers[LA].self_attn, m.model.layers[LB].self_attn
params = list(m.parameters()) + list(heads.parameters())
opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.98), weight_decay=0.01)
IMG = m.config.image_token_id; NL = tok.convert_tokens_to_ids("Ċ"); DOT = tok.convert_tokens_to_ids(".")
LET = {c: tok.convert_tokens_to_ids(c) for c in "ABCD"}

def ground_loss(att, b, qpos, targets, GH=GH):
    """-log(attention mass on targets) of head GH at query qpos[i], rows with targets only."""
    q, k, mask = att.captured
    rows = [i for i, t in enumerate(targets) if t]
    if not rows:
        return torch.zeros(())
    loss = 0.0; acc = 0.0
    for i in rows:
        lg = (q[i, GH, qpos[i]] @ k[i, GH].T).masked_fill(~mask[i, 0, qpos[i]], float("-inf"))
        lp = lg.log_softmax(-1)
        loss = loss - torch.logsumexp(lp[targets[i]], 0)
        acc += float(lp.argmax() in targets[i])
    return loss / len(rows), acc / len(rows)

def supervision(b, exs, n):
    ids = b["input_ids"]; L = ids.shape[1]
    qa, qb, ta, tb, ta2 = [], [], [], [], []
    for i, (e, k) in enumerate(zip(exs, n)):
        row = ids[i].tolist()
        qa.append(L - k - 1); qb.append(L - 4)  # ... { LETTER } <|im_end|>
        img = [j for j, t in enumerate(row) if t == IMG]
        g = e.scene.width // 16
        cell = lambda o: min(int(o.y // 16), g - 1) * g + min(int(o.x // 16), g - 1)
        objs = [e.scene.get(t.id) for t in e.question.targets]
        if e.question.kind == "relation":  # head GH: the subject; head GH2: the reference object
            ta.append([img[cell(objs[0])]]); ta2.append([img[cell(objs[1])]])
        else:
            ta.append([img[c] for c in sorted({cell(o) for o in objs})]); ta2.append([])
        let = LET[e.question.answer]
        pos = [j for j in range(1, L - k - 1) if row[j] == let and row[j - 1] == NL and row[j + 1] == DOT]
        tb.append([pos[-1], pos[-1] + 1, pos[-1] + 2] if pos else [])
    return qa, qb, ta, tb, ta2

evalset = eval_items(256, "simple", seed=90)
rng = np.random.default_rng(int(os.environ.get("SEED", "0"))); t0 = time.time(); step = 0; comp = {}
while time.time() - t0 < MIN * 60:
    exs = []
    while len(exs) < BS:
        seed = int(rng.integers(*TRAIN_SEEDS)); e = make_example(seed)
        if e: e.question = question_for(seed, "simple", None).question; exs.append(e)
    n = [comp.setdefault(e.completion, len(tok(e.completion + EOS, add_special_tokens=False)["input_ids"])) for e in exs]
    b = collate(d, exs, n)
    for g in opt.param_groups: g["lr"] = LR * min(1, (step + 1) / 100)
    attA.capture = attB.capture = True
    out = m(**b)
    attA.capture = attB.capture = False
    qa, qb, ta, tb, ta2 = supervision(b, exs, n)
    ga, acc_a = ground_loss(attA, b, qa, ta); gb, acc_b = ground_loss(attB, b, qb, tb)
    if any(ta2):
        ga2, _ = ground_loss(attA, b, qa, ta2, GH=GH2); ga = ga + ga2
    f = feats["f"].reshape(len(exs), -1, H)
    aux, st = heads(f, emb.weight, torch.from_numpy(np.stack([dense_labels(e.scene, 4) for e in exs])))
    loss = out.loss + AUX * aux + GW * (ga + gb)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step(); step += 1
    if step % EV == 0:
        r = quick_eval(d, evalset)
        if os.environ.get("SAVE"): d.save(os.environ["SAVE"]); torch.save(heads.state_dict(), os.environ["SAVE"] + "/heads.pt")
        print(json.dumps({"step": step, "min": round((time.time() - t0) / 60, 2), "lm": round(float(out.loss), 3), "gA": round(float(ga), 3), "accA": round(acc_a, 2), "gB": round(float(gb), 3), "accB": round(acc_b, 2)} | {k: round(v, 3) for k, v in (r | st).items()}), flush=True)

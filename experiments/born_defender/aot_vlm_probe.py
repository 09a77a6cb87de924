"""Probe: does the aot_vlm (prefix-LM, conv vision) learn simple-regime questions end to end?
MIN minutes of joint training (questions + dense cell labels), held-out greedy eval every EV steps."""
import os, time, json; os.environ["HF_HUB_OFFLINE"] = "1"
import torch, numpy as np, torch.nn.functional as F
torch.set_num_threads(int(os.environ.get("T", "2"))); torch.manual_seed(0)
from aot.models import build_tiny, Defender
from aot.models.tokenizer import EOS
from aot.models.evaluation import eval_items, TRAIN_SEEDS
from aot.pretrain import collate, dense_labels, make_example, quick_eval, DenseHeads, COLOR_LIST, SIZE_LIST
from aot.world import SHAPES, MATERIALS
LR = float(os.environ.get("LR", "1e-3")); BS = int(os.environ.get("BS", "32")); MIN = float(os.environ.get("MIN", "6"))
EV = int(os.environ.get("EV", "150")); AUX = float(os.environ.get("AUX", "1")); BIDIR = os.environ.get("BIDIR", "1") == "1"
INIT = os.environ.get("INIT", "")
if INIT:
    from aot.models import load_defender
    d = load_defender(INIT); m, p = d.model, d.processor; m.train()
else:
    m, p = build_tiny("tiny-aot-vlm")
    d = Defender(m, p, "aot_vlm")
m.config.bidirectional_prefix = BIDIR; tok = d.tokenizer
VLR = float(os.environ.get("VLR", "1"))
emb = m.get_input_embeddings()
wid = [torch.tensor([tok.convert_tokens_to_ids("Ġ" + w) for w in vals]) for vals in (COLOR_LIST, list(SHAPES), list(MATERIALS), SIZE_LIST)]
heads = DenseHeads(192, wid)
if INIT and os.path.exists(INIT + "/heads.pt"):
    heads.load_state_dict(torch.load(INIT + "/heads.pt", weights_only=True))
feats = {}
ORACLE = os.environ.get("ORACLE") == "1"; cur = {}
if ORACLE:  # exact symbolic cells: sum of the word embeddings of the centred object's attributes
    posx = torch.nn.Parameter(torch.randn(8, 192) * 0.02); posy = torch.nn.Parameter(torch.randn(8, 192) * 0.02)
    cellpos = torch.nn.Parameter(torch.randn(16, 192) * 0.02); empty = torch.nn.Parameter(torch.randn(192) * 0.02)
    def oracle(pixel_values, image_grid_thw):
        n = image_grid_thw.shape[0]; o = cur.get("off", 0); lab = cur["lab"][o:o + n]; cur["off"] = o + n; E = emb.weight; has = lab[..., 0] >= 0; l = lab.clamp(min=0)
        f = sum(E[wid[i][l[..., i]]] for i in range(4)) + posx[l[..., 4]] + posy[l[..., 5]]
        f = torch.where(has[..., None], f, empty.expand_as(f)) + cellpos
        out = f.reshape(-1, 192); feats["f"] = out; return out
    m.model.get_image_features = oracle
m.model.visual.register_forward_hook(lambda mod, a, out: feats.__setitem__("f", out))
params = list(m.parameters()) + list(heads.parameters())
if ORACLE: params += [posx, posy, cellpos, empty]
vis = [q for n, q in m.named_parameters() if n.startswith("model.visual")]
rest = [q for n, q in m.named_parameters() if not n.startswith("model.visual")] + list(heads.parameters()) + (params[-4:] if ORACLE else [])
opt = torch.optim.AdamW([{"params": vis, "mult": VLR}, {"params": rest, "mult": 1.0}], lr=LR, betas=(0.9, 0.98), weight_decay=0.01)
evalset = eval_items(256, "simple", seed=90)
rng = np.random.default_rng(0); t0 = time.time(); step = 0; comp = {}
while time.time() - t0 < MIN * 60:
    exs = []
    while len(exs) < BS:
        e = make_example(int(rng.integers(*TRAIN_SEEDS)))
        if e: exs.append(e)
    n = [comp.setdefault(e.completion, len(tok(e.completion + EOS, add_special_tokens=False)["input_ids"])) for e in exs]
    b = collate(d, exs, n)
    for g in opt.param_groups: g["lr"] = g["mult"] * LR * min(1, (step + 1) / 100)
    cur["lab"] = torch.from_numpy(np.stack([dense_labels(e.scene, 4) for e in exs])); cur["off"] = 0
    out = m(**b)
    f = feats["f"].reshape(len(exs), -1, 192)
    lab = torch.from_numpy(np.stack([dense_labels(e.scene, 4) for e in exs]))
    aux, st = heads(f, emb.weight, lab)
    loss = out.loss + AUX * aux
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step(); step += 1
    if step % EV == 0:
        cur["lab"] = torch.from_numpy(np.stack([dense_labels(i.scene, 4) for i in evalset])); cur["off"] = 0
        r = quick_eval(d, evalset)
        if os.environ.get("SAVE"): d.save(os.environ["SAVE"])
        print(json.dumps({"step": step, "min": round((time.time() - t0) / 60, 2), "lm": round(float(out.loss), 3)} | {k: round(v, 3) for k, v in (r | st).items()}), flush=True)

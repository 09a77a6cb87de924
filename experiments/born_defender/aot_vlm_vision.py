"""Stage-1 probe: the aot_vlm conv encoder alone learns dense cell labels (colour, shape,
material, size, place) through the word-embedding classifier heads; SAVE to keep the model."""
import os, time, json; os.environ["HF_HUB_OFFLINE"] = "1"
import torch, numpy as np
torch.set_num_threads(2); torch.manual_seed(0)
from aot.models import build_tiny, Defender
from aot.models.evaluation import TRAIN_SEEDS
from aot.pretrain import dense_labels, DenseHeads, COLOR_LIST, SIZE_LIST, image_inputs
from aot.world import SHAPES, MATERIALS, sample_scene, render
LR = float(os.environ.get("LR", "2e-3")); BS = int(os.environ.get("BS", "64")); MIN = float(os.environ.get("MIN", "4"))
m, p = build_tiny("tiny-aot-vlm"); tok = p.tokenizer
emb = m.get_input_embeddings()
wid = [torch.tensor([tok.convert_tokens_to_ids("Ġ" + w) for w in vals]) for vals in (COLOR_LIST, list(SHAPES), list(MATERIALS), SIZE_LIST)]
heads = DenseHeads(192, wid)
from aot.pretrain import PatchHeads, patch_labels
ph = PatchHeads(m.config.vision_channels[2]); mid = {}
m.model.visual.stages[2].register_forward_hook(lambda mod, a, out: mid.__setitem__("f", out))
PW = float(os.environ.get("PW", "1"))
params = list(m.model.visual.parameters()) + list(heads.parameters()) + [emb.weight] + list(ph.parameters())
opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.98), weight_decay=0.0)
rng = np.random.default_rng(0); t0 = time.time(); step = 0; tg = 0
while time.time() - t0 < MIN * 60:
    t1 = time.time()
    scenes = [sample_scene(int(rng.integers(*TRAIN_SEEDS)), "simple") for _ in range(BS)]
    ims = [render(s) for s in scenes]; tg += time.time() - t1
    b = image_inputs(p, ims)
    f = m.model.visual(b["pixel_values"], b["image_grid_thw"]).reshape(BS, -1, 192)
    lab = torch.from_numpy(np.stack([dense_labels(s, 4) for s in scenes]))
    for g in opt.param_groups: g["lr"] = LR * min(1, (step + 1) / 50)
    loss, st = heads(f, emb.weight, lab)
    if PW:
        pf = mid["f"].flatten(2).transpose(1, 2)
        pl, pst = ph(pf, torch.from_numpy(np.stack([patch_labels(s, 8) for s in scenes])))
        loss = loss + PW * pl; st |= pst
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step(); step += 1
    if step % 100 == 0:
        print(json.dumps({"step": step, "min": round((time.time() - t0) / 60, 2), "datagen_min": round(tg / 60, 2), "loss": round(float(loss), 3)} | {k: round(v, 3) for k, v in st.items()}), flush=True)
if os.environ.get("SAVE"):
    Defender(m, p, "aot_vlm").save(os.environ["SAVE"]); torch.save(heads.state_dict(), os.environ["SAVE"] + "/heads.pt")

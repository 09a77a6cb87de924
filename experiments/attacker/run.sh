#!/usr/bin/env bash
# The attacker runs of docs/attacker-experiments.md, in order, against the shipped born
# defender. About 2 h 30 min on 2 CPU cores. OUT defaults to /tmp/attacker.
set -euo pipefail
OUT=${OUT:-/tmp/attacker}
CFG=$(dirname "$0")/rl.yaml
export HF_HUB_OFFLINE=1

# 1. AOT-SFT with the heuristic proposer (3,000 records, 588 effective edits, 241 s)
aot build-sft --n 3000 --attacker heuristic --out "$OUT/sft" --workers 2
# 2. cold start: SFT on the effective edits (8 epochs, lr 1e-3: 296 steps)
aot attacker train --defender base --out "$OUT/cs" --sft-data "$OUT/sft" --items 0 --config "$CFG"
# 3. GRPO from the cold start: 4,096 questions drawn (the ~2,000 the defender gets right are
#    used), 150 steps x 8 prompts x 4 rollouts, integrity penalty -0.5
aot attacker train --defender base --init "$OUT/cs/attacker" --out "$OUT/rl" --items 4096 --config "$CFG"
# 4. held-out evaluation (500 questions; --temperature 1 samples the policy as trained)
for a in random heuristic "$OUT/cs/attacker" "$OUT/rl/attacker"; do
  aot attacker eval --attacker "$a" --defender base --n 500 --seed 0 --json
done
for a in "$OUT/cs/attacker" "$OUT/rl/attacker"; do
  aot attacker eval --attacker "$a" --defender base --n 500 --seed 0 --json --temperature 1
done
# 5. the same GRPO with the diversity bonus (no collapse onto one op; docs/attacker-experiments.md)
aot attacker train --defender base --init "$OUT/cs/attacker" --out "$OUT/rl_div" --items 4096 --config "$CFG" --set attacker_rl.scoring.diversity_bonus=0.05
aot attacker eval --attacker "$OUT/rl_div/attacker" --defender base --n 500 --seed 0 --json --temperature 1

# --- probability efficacy, behaviour-cloned cold start (docs/attacker-experiments.md): ~20 min per GRPO run on one thread ---
# 6. probability efficacy: the reward reads the defender's p(right option), no sampling noise
aot attacker train --defender base --init "$OUT/cs/attacker" --out "$OUT/rl_prob" --items 4096 --config "$CFG" --set attacker_rl.scoring.efficacy=prob
# 7. the same with the diversity bonus
aot attacker train --defender base --init "$OUT/cs/attacker" --out "$OUT/rl_prob_div" --items 4096 --config "$CFG" --set attacker_rl.scoring.efficacy=prob --set attacker_rl.scoring.diversity_bonus=0.05
# 7b. diversity bonus with a harsher integrity penalty (-1)
aot attacker train --defender base --init "$OUT/cs/attacker" --out "$OUT/rl_prob_div_pen" --items 4096 --config "$CFG" --set attacker_rl.scoring.efficacy=prob --set attacker_rl.scoring.diversity_bonus=0.05 --set attacker_rl.scoring.integrity_penalty=-1.0
# 8. behaviour-cloned cold start (padded to 4,000 integrity-passing heuristic edits, 2 epochs) + probability GRPO
aot attacker train --defender base --out "$OUT/bc_prob" --sft-data "$OUT/sft" --items 4096 --config "$CFG" --set attacker_rl.scoring.efficacy=prob --set sft_min_examples=4000 --set sft.epochs=2
for a in "$OUT/rl_prob/attacker" "$OUT/rl_prob_div/attacker" "$OUT/rl_prob_div_pen/attacker" "$OUT/bc_prob/attacker"; do
  for t in 0 1; do aot attacker eval --attacker "$a" --defender base --n 500 --seed 0 --json --temperature $t; done
done
# 9. robustness: 2,000 questions and other 500-question slices (by_op / by_kind in the JSON)
for a in random heuristic; do aot attacker eval --attacker $a --defender base --n 2000 --seed 0 --json; done
aot attacker eval --attacker "$OUT/rl_prob/attacker" --defender base --n 2000 --seed 0 --json --temperature 1
for s in 1 2; do
  for a in random heuristic; do aot attacker eval --attacker $a --defender base --n 500 --seed $s --json; done
  aot attacker eval --attacker "$OUT/rl_prob/attacker" --defender base --n 500 --seed $s --json --temperature 1
done

# --- relative ops (twin ID ..., mimic ID; docs/attacker-experiments.md) ---
# 10. the baselines at the model attacker's action space: random over all ten ops, the heuristic
#     writing its lookalikes and mimic patches as relative ops
for s in 0 1 2; do
  for a in random-all heuristic-relative; do aot attacker eval --attacker $a --defender base --n 500 --seed $s --json; done
done
for a in random-all heuristic-relative; do aot attacker eval --attacker $a --defender base --n 2000 --seed 0 --json; done
# 11. cold start: the 588 effective AOT-SFT edits (+12 useless ones, sft_limit 600) padded with
#     3,400 integrity-passing heuristic-relative edits, 2 epochs (500 steps); then probability GRPO
#     (150 steps). 6.5 + 11 min on 2 threads.
aot attacker train --defender base --out "$OUT/rel" --sft-data "$OUT/sft" --items 4096 --config "$CFG" --set attacker_rl.scoring.efficacy=prob --set sft_min_examples=4000 --set sft_limit=600 --set sft_teacher=heuristic-relative --set sft.epochs=2
aot attacker train --defender base --out "$OUT/rel_cs" --sft-data "$OUT/sft" --items 0 --config "$CFG" --set sft_min_examples=4000 --set sft_limit=600 --set sft_teacher=heuristic-relative --set sft.epochs=2
# 12. held out: greedy and sampled, 2,000 questions and three 500-question slices
for a in "$OUT/rel/attacker" "$OUT/rel_cs/attacker"; do
  for t in 0 1; do
    aot attacker eval --attacker "$a" --defender base --n 2000 --seed 0 --json --temperature $t
    for s in 0 1 2; do aot attacker eval --attacker "$a" --defender base --n 500 --seed $s --json --temperature $t; done
  done
done
# 13. a second training seed (did not find the mimic rule), and 150 more GRPO steps from it
aot attacker train --defender base --out "$OUT/rel_s1" --sft-data "$OUT/sft" --items 4096 --seed 1 --config "$CFG" --set attacker_rl.scoring.efficacy=prob --set sft_min_examples=4000 --set sft_limit=600 --set sft_teacher=heuristic-relative --set sft.epochs=2
aot attacker train --defender base --init "$OUT/rel_s1/attacker" --out "$OUT/rel_s1b" --items 4096 --seed 1 --config "$CFG" --set attacker_rl.scoring.efficacy=prob
for a in "$OUT/rel_s1/attacker" "$OUT/rel_s1b/attacker"; do aot attacker eval --attacker "$a" --defender base --n 500 --seed 1 --json; done

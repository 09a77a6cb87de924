#!/usr/bin/env bash
# The attacker runs of README "The attacker" (session 4), in order, against the shipped born
# defender. About 55 min on 2 CPU cores. OUT defaults to /tmp/attacker.
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
# 5. the same GRPO with the diversity bonus (no collapse onto one op; README "The attacker")
aot attacker train --defender base --init "$OUT/cs/attacker" --out "$OUT/rl_div" --items 4096 --config "$CFG" --set attacker_rl.scoring.diversity_bonus=0.05
aot attacker eval --attacker "$OUT/rl_div/attacker" --defender base --n 500 --seed 0 --json --temperature 1

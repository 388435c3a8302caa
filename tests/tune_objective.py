#!/usr/bin/env python3
"""A crafted objective for `chronos tune` command trials (tests/tune_cli.sh).

usage: tune_objective.py X LOG SLEEP EXIT
Reports a held-out loss (x - 0.3)^2 + 1/step at steps 1..5 to LOG as the training log does
({"step": S, "val_loss": V} lines), sleeping SLEEP seconds before each; prints the final
metrics {"f": ..., "g": ...} as its last line; exits with EXIT (non-zero: a failing trial)
before printing them.
"""
import json
import sys
import time

x, log, pause, status = float(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
with open(log, "a") as f:
    for step in range(1, 6):
        time.sleep(pause)
        f.write(json.dumps({"step": step, "val_loss": (x - 0.3) ** 2 + 1.0 / step}) + "\n")
        f.flush()
if status:
    print("failing as asked", file=sys.stderr)
    sys.exit(status)
print("some output before the result")
print(json.dumps({"f": (x - 0.3) ** 2 + 0.2, "g": abs(x)}))

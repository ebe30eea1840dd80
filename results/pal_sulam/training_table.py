"""The training runs in a folder of checkpoints, as a CSV (read from the ``*.metrics.json`` files
that ``smoothcert train`` writes beside each checkpoint).

Usage: python results/pal_sulam/training_table.py FOLDER OUT.csv
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def main(folder: str, out: str) -> None:
    rows = []
    for path in sorted(Path(folder).glob("*.metrics.json")):
        record = json.loads(path.read_text())
        config, last = record["config"], record["metrics"][-1]
        classes = config["dataset_options"].get("classes") or []
        rows.append({
            # the training noise's size; earlier configs recorded it as train_sigma
            "alpha": (config["train_sigma"] if "train_sigma" in config
                      else (config["noise"] or {}).get("sigma")) or 0.0,
            "init_from": "clean" if config["init_from"] else "",
            "epochs": config["epochs"],
            "train_examples": config["max_train"] or "all",
            "noise_copies": config["noise_copies"],
            "classes": ",".join(map(str, classes)) or "all",
            "eval_examples": config["max_eval"] or "all",
            "test_accuracy": last["test_accuracy"],
            "test_noisy_accuracy": ("" if last["test_noisy_accuracy"] is None
                                    else last["test_noisy_accuracy"]),
            "seconds": round(sum(m["seconds"] for m in record["metrics"]), 1),
        })
    rows.sort(key=lambda row: float(row["alpha"]))
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(Path(out).read_text(), end="")


if __name__ == "__main__":
    main(*sys.argv[1:3])

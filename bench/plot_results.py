#!/usr/bin/python3
"""Recall@10 against p50 latency, one line (its recall/latency front) per configuration, from
chamferdb_bench's JSON.

    /usr/bin/python3 bench/plot_results.py bench/results/results_100k.json bench/results/recall_latency_100k.png

Needs Debian's python3-matplotlib (scripts/install-deps.sh). The exact brute-force search is
drawn as a star at recall 1.0 and its measured single-core latency.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    with open(src) as f:
        res = json.load(f)
    fig, ax = plt.subplots(figsize=(11, 6))
    for row in res.get("configs", []):
        pts = sorted((p["p50_ms"], p["recall@10"]) for p in row.get("sweep", []))
        if not pts:
            continue
        # The line is the configuration's front (each point more recall than every faster
        # one); sweep points behind it are drawn as markers only.
        front = []
        for p in pts:
            if not front or p[1] > front[-1][1]:
                front.append(p)
        (line,) = ax.plot([p[0] for p in front], [p[1] for p in front], marker="o", label=row["config"])
        behind = [p for p in pts if p not in front]
        if behind:
            ax.plot([p[0] for p in behind], [p[1] for p in behind], marker="o", linestyle="none",
                    color=line.get_color(), alpha=0.4)
    exact_ms = res.get("exact", {}).get("ms_per_query_one_core", 0)
    if exact_ms > 0:
        ax.plot([exact_ms], [1.0], marker="*", markersize=14, color="black", linestyle="none", label="exact (1 core)")
    c = res.get("corpus", {})
    ax.set_xscale("log")
    ax.set_xlabel("p50 latency per query, ms (one client, log scale)")
    ax.set_ylabel("recall@10 against exact Chamfer")
    ax.set_title(f"chamferdb: {c.get('documents', '?')} documents, {c.get('queries', '?')} queries, dim {c.get('dim', '?')}")
    ax.axhline(0.95, color="grey", linestyle=":", linewidth=1)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

import json, re, sys
# Runs A, B (50 queries) and C (200 queries) merged into one plot file: one line per
# (run set, candidates, refine), its points the nprobe values.
out = None
for path, tag in (("bench/results/results_1m_refine.json", "50q"), ("bench/results/results_1m_refine_np1000.json", "50q"),
                  ("bench/results/results_1m_refine_200q.json", "200q")):
    try:
        r = json.load(open(path))
    except FileNotFoundError:
        continue
    if out is None:
        out = {k: r[k] for k in ("corpus", "exact")}
        out["configs"], lines = [], {}
    for p in r["configs"][0]["sweep"]:
        c, np_, ref = re.match(r"c=(\d+),np=(\d+),refine=(\d+)", p["knob"]).groups()
        name = f"c={int(c)//1000}k refine={int(ref)//1000}k ({tag})"
        if name not in lines:
            lines[name] = {"config": name, "sweep": []}
            out["configs"].append(lines[name])
        lines[name]["sweep"].append(p)
json.dump(out, open("bench/results/results_1m_refine_all.json", "w"), indent=1)

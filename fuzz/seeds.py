#!/usr/bin/env python3
"""Picks the fuzz seed corpus kept in git: the inputs of a full corpus that cover the most
code, greedily (each next input is the one adding the most edges not yet covered), up to a
budget per target. The edges come from libFuzzer's merge control file:

    cd fuzz && cargo fuzz build -s none --dev
    T=../target/fuzz/x86_64-unknown-linux-gnu/debug/wire
    mkdir -p /tmp/merged && $T -merge=1 -use_counters=0 -use_value_profile=0 \\
        -merge_control_file=/tmp/wire.ctl /tmp/merged ../target/fuzz-corpus/wire
    ./seeds.py /tmp/wire.ctl 400 corpus/wire     # after emptying corpus/wire

Usage: seeds.py CONTROL_FILE BUDGET OUT_DIR
"""

import os
import shutil
import sys


def main() -> None:
    control, budget, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    lines = open(control).read().split("\n")
    count = int(lines[0])
    files = lines[2 : 2 + count]
    edges = {}
    for line in lines[2 + count :]:
        if line.startswith("COV "):
            parts = line.split()
            edges[int(parts[1])] = set(parts[2:])
    everything = set().union(*edges.values()) if edges else set()
    covered, chosen = set(), []
    while len(chosen) < budget and edges:
        # The most new edges; of equals, the smallest input.
        best = max(edges, key=lambda i: (len(edges[i] - covered), -os.path.getsize(files[i])))
        if not edges[best] - covered:
            break
        chosen.append(best)
        covered |= edges.pop(best)
    os.makedirs(out, exist_ok=True)
    for i in chosen:
        shutil.copy(files[i], os.path.join(out, os.path.basename(files[i])))
    share = 100 * len(covered) / max(1, len(everything))
    print(f"{out}: {len(chosen)} of {len(files)} inputs, {len(covered)} of {len(everything)} edges ({share:.1f}%)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Generates an nginx-map links file (and the list of its keys) for benches/http/run.sh.

    gen_map.py N OUT_MAP [--keys OUT_KEYS] [--seed S] [--variant V]

The map is a whole `map $uri $affiliate_url { ... }` block: nginx `include`s it in its `http`
block and linkgate loads it with `--links OUT_MAP` (format by the `.map` extension). Keys are
`/go/k<N>-<8 random hex>` (deterministic for a seed, so two variants have the same keys);
targets are ~60 B: `https://store.example.com/p/<N>?ref=aff_<N%100>&utm=<variant>`. Two
variants of the same seed differ in every target, which makes a reload change every link.
"""
import argparse
import random
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("out_map")
    ap.add_argument("--keys", help="also write the keys, one a line")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--variant", default="x")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    keys = [f"/go/k{i}-{rng.getrandbits(32):08x}" for i in range(a.n)]
    with open(a.out_map, "w") as f:
        f.write("map $uri $affiliate_url {\n")
        f.write("    default https://store.example.com/;\n")
        f.write(
            "".join(
                f"    {k} https://store.example.com/p/{i}?ref=aff_{i % 100:02d}&utm={a.variant};\n"
                for i, k in enumerate(keys)
            )
        )
        f.write("}\n")
    if a.keys:
        with open(a.keys, "w") as f:
            f.write("\n".join(keys))
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How long loading MNIST takes: first parse of the IDX files versus a cached reload.

    python benchmarks/bench_data.py --data-dir ../shared/data/mnist

The first call validates and parses the four IDX files (gzip, header, size, SHA-256)
and caches the arrays as .npz; later calls read the cache (target: under 1 s for both
splits). Uses a temporary cache folder, so your real cache is not touched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["XDG_CACHE_HOME"] = cache
        from chainrule.datasets import mnist

        def both() -> float:
            start = time.perf_counter()
            mnist("train", data_dir=args.data_dir)
            mnist("test", data_dir=args.data_dir)
            return time.perf_counter() - start

        first = both()
        reloads = [both() for _ in range(args.repeats)]
    print(f"first load (parse, validate, cache): {first:.2f} s")
    print(f"cached reload, train + test, median of {args.repeats}: "
          f"{statistics.median(reloads):.3f} s")


if __name__ == "__main__":
    main()

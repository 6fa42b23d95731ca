"""Command line of scripts/pat-export (see that script). Exit 2 on a bad input, with the reason."""

import argparse
import sys

from . import bundle, weights


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="pat-export",
        description="Convert PAT encoder weights (Keras-2 .h5) into a Clarity model bundle.",
    )
    p.add_argument("--weights", help="PAT-{S,M,L}_29k_weights.h5")
    p.add_argument("--size", choices=["S", "M", "L"])
    p.add_argument("--scaler", help='JSON {"mean": x or [10080], "std": x or [10080]}; default mean 0, std 1')
    p.add_argument("--head", help="ONNX head: input `embedding` (batch, 96), one output per score")
    p.add_argument("--out", help="bundle folder to write (replaced if it holds a bundle)")
    p.add_argument(
        "--random-weights",
        metavar="H5",
        help="write random weights for --size in the official layout to H5 and exit (tests, benchmarks)",
    )
    p.add_argument("--random-head", metavar="ONNX", help="write a random example head to ONNX and exit (tests)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.random_weights:
        if not a.size:
            p.error("--random-weights needs --size")
        weights.write_random(a.random_weights, a.size, seed=a.seed)
        return 0
    if a.random_head:
        bundle.random_head(a.random_head, seed=a.seed)
        return 0
    if not (a.weights and a.size and a.out):
        p.error("--weights, --size and --out are required")
    try:
        doc = bundle.export(a.weights, a.size, a.out, scaler_path=a.scaler, head_path=a.head)
    except (weights.WeightError, bundle.BundleError) as e:
        print(f"pat-export: {e}", file=sys.stderr)
        return 2
    print(f"pat-export: wrote {doc['model']} bundle to {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Sequential MNIST (each image row one step: 28 steps of 28 Q0.8 currents) through a PSN network in
fixed point, learning online on the device's arithmetic (FixedPSN, taps frozen at 2^-1, per-step
weight updates, the rate halving every two epochs). An exploratory run, not a tuned result
(docs/psn.md §7): it prints the accuracy on the first --n-test test images after each epoch.

    .venv/bin/python bench/psn_smnist.py                       # 28-128-10, K = 4, D = 2, rate 2^-11
    .venv/bin/python bench/psn_smnist.py --hidden 256 --taps 8 --dilation 4"""
import argparse
import time

import numpy as np

from edgelearn import datasets
from edgelearn.psnnet import FixedPSN, make_net


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--taps", type=int, default=4)
    p.add_argument("--dilation", type=int, default=2)
    p.add_argument("--lr-shift", type=int, default=11)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--n-train", type=int, default=10000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args(argv)
    ds = datasets.load("smnist")
    net = make_net([28, args.hidden, 10], taps=args.taps, dilations=[args.dilation], seed=1, T=28,
                   weight_scale=1.0, threshold=args.threshold, lr_weight_shift=args.lr_shift)
    fx = FixedPSN(net)
    for e in range(args.epochs):
        fx.net.lr_weight_shift = args.lr_shift + e // 2
        t = time.time()
        for i in np.random.default_rng(e).permutation(args.n_train):
            fx.run(ds.x_train[i:i + 1], ds.y_train[i:i + 1], True)
        s = fx.run(ds.x_test[:args.n_test], None, False)
        print(f"epoch {e}: test accuracy {np.mean(np.argmax(s, 1) == ds.y_test[:args.n_test]):.4f} "
              f"({time.time() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main()

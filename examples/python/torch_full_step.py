#!/usr/bin/python3
"""torch_full_step.py - libdrpo's full robust step over a flat float32
parameter vector, with the gradients computed by torch in the callbacks.

    /usr/bin/python3 examples/python/torch_full_step.py            # ~10 s
    /usr/bin/python3 examples/python/torch_full_step.py --small    # smoke test

The library owns the parameters of a small MLP reward model (one float32
vector) and runs the whole step: forward callback -> worst-case weights ->
backward callback -> clipping -> AdamW -> dual / group-weight update.  The
callbacks see the parameters through torch tensors that are views of the
library's own vector (torch.from_numpy(model.params): no copy), unflatten
them into the MLP's weight matrices and use autograd for the gradient of
sum_j w_j loss_j.  ERM (the 'none' set) and group DRO over the benchmark's
five domains are trained the same way and evaluated per domain.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import synth_data  # noqa: E402

torch = synth_data.import_or_skip("torch", "python3-torch")

import drpo  # noqa: E402


class FlatMLP:
    """An MLP r(phi) = w2 . tanh(W1 phi + b1) + b2 whose parameters are
    slices of one flat tensor."""

    def __init__(self, dim, hidden):
        self.shapes = [(hidden, dim), (hidden,), (1, hidden), (1,)]
        self.n_params = sum(int(np.prod(s)) for s in self.shapes)

    def init(self, seed):
        torch.manual_seed(seed)
        ref = torch.nn.Sequential(torch.nn.Linear(self.shapes[0][1], self.shapes[0][0]),
                                  torch.nn.Tanh(), torch.nn.Linear(self.shapes[0][0], 1))
        return torch.nn.utils.parameters_to_vector(ref.parameters()).detach()

    def unflatten(self, flat):
        out, k = [], 0
        for s in self.shapes:
            n = int(np.prod(s))
            out.append(flat[k:k + n].view(s))
            k += n
        return out

    def reward(self, flat, x):
        w1, b1, w2, b2 = self.unflatten(flat)
        return (torch.tanh(x @ w1.T + b1) @ w2.T + b2).squeeze(-1)

    def pair_losses(self, flat, chosen, rejected):
        return torch.nn.functional.softplus(-(self.reward(flat, chosen)
                                              - self.reward(flat, rejected)))


def make_model(net, chosen, rejected):
    """A drpo.Model whose callbacks compute with torch.  The batch's host
    index of a pair is its row in chosen/rejected."""
    state = {}

    def forward(params, batch, out):
        idx = torch.from_numpy(batch.host_indices())
        with torch.no_grad():
            loss = net.pair_losses(state["flat"], chosen[idx], rejected[idx])
        torch.from_numpy(out).copy_(loss)        # out: the library's float64 buffer

    def backward(params, batch, pair_weight, grad):
        idx = torch.from_numpy(batch.host_indices())
        p = state["flat"].detach().requires_grad_(True)   # shares the library's memory
        loss = net.pair_losses(p, chosen[idx], rejected[idx])
        w = torch.from_numpy(pair_weight.copy()).to(loss.dtype)
        (g,) = torch.autograd.grad((w * loss).sum(), p)
        torch.from_numpy(grad).copy_(g)          # grad: the library's float32 buffer

    model = drpo.Model(net.n_params, forward, backward, inplace=True)
    # a writable float32 view of the library's parameters, as a torch tensor
    state["flat"] = torch.from_numpy(model.params)
    return model, state["flat"]


def accuracy(net, flat, data):
    with torch.no_grad():
        c, r = torch.from_numpy(data.chosen), torch.from_numpy(data.rejected)
        return float((net.reward(flat, c) > net.reward(flat, r)).float().mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = synth_data.parse_args(ap, argv)
    torch.set_num_threads(min(4, os.cpu_count() or 1))

    t0 = time.time()
    train_set, tests = synth_data.load(args.pairs, test_pairs=args.test_pairs,
                                       data_dir=args.data)
    chosen, rejected = torch.from_numpy(train_set.chosen), torch.from_numpy(train_set.rejected)
    keys = [drpo.prompt_key(p) for p in train_set.prompt]
    net = FlatMLP(synth_data.DIM, args.hidden)
    G = len(synth_data.DOMAINS)
    setups = [("ERM", drpo.Objective("none", groups=G)),
              ("group DRO (KL ball 1)",
               drpo.Objective("kl", radius=1.0, mode="group", groups=G, dual_lr=0.05))]
    t1 = time.time()
    results = {}
    for name, obj in setups:
        model, flat = make_model(net, chosen, rejected)
        model.params = net.init(args.seed).numpy()      # the same start for both
        with drpo.Trainer(model, obj, optimizer="adamw", lr=args.lr, clip_norm=10.0) as tr:
            rng = np.random.default_rng(args.seed)
            batch = drpo.Batch()
            for epoch in range(args.epochs):
                order = rng.permutation(len(train_set))
                for start in range(0, len(order), args.batch):
                    batch.clear()
                    for i in order[start:start + args.batch]:
                        batch.add_key(keys[i], train_set.group[i], i)
                    tr.step(batch)
            robust, gnorm = tr.evaluate(batch)
            d = tr.diags()
            print("%-22s steps %d, last batch: robust %.4f, mean loss %.4f, grad norm %.3g"
                  % (name, d["steps"], robust, d["mean_loss"], gnorm))
        results[name] = {dom: accuracy(net, flat, tests[dom]) for dom in synth_data.DOMAINS}
        model.close()
    t2 = time.time()

    return synth_data.report(
        results, "libdrpo %s, torch %s: %d training pairs, %d epochs (data %.1fs, training %.1fs)"
        % (drpo.version(), torch.__version__, len(train_set), args.epochs, t1 - t0, t2 - t1),
        args.small)

if __name__ == "__main__":
    sys.exit(main())

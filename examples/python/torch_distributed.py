#!/usr/bin/python3
"""torch_distributed.py - data-parallel robust training with torch.distributed:
the weights-only path with a libdrpo collective over torch.distributed.

    /usr/bin/python3 examples/python/torch_distributed.py            # 2 ranks, gloo
    /usr/bin/python3 examples/python/torch_distributed.py --small    # smoke test

Each rank holds a slice of every global minibatch (pairs of one prompt may
sit on different ranks).  TorchCollective gives libdrpo all-gather and
all-reduce over torch.distributed, so trainer.weights() on every rank merges
the units of all ranks by prompt key and returns the same exact worst-case
weights a single process would compute on the whole global batch (the
weights of a rank's pairs, summing to 1 over all ranks).  Each rank then
backpropagates sum_j w_j loss_j over its own pairs, the gradients are summed
with all_reduce (SUM, not mean: the weights are already global), and every
rank steps the same optimiser.

The program runs 2 ranks with the gloo backend on this machine (through
torch.multiprocessing) and one process on the whole batches, and checks that
the robust values and the final parameters agree.
"""

import argparse
import os
import socket
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import synth_data  # noqa: E402

torch = synth_data.import_or_skip("torch", "python3-torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

import drpo  # noqa: E402


class TorchCollective(drpo.Collective):
    """libdrpo's collectives over the default torch.distributed process
    group (any backend with all_gather and all_reduce on CPU tensors)."""

    def __init__(self, group=None):
        super().__init__(dist.get_rank(group), dist.get_world_size(group))
        self.group = group

    def allgather_u64(self, value):
        out = [torch.zeros(1, dtype=torch.int64) for _ in range(self.size)]
        dist.all_gather(out, torch.tensor([value], dtype=torch.int64), group=self.group)
        return [int(t) for t in out]

    def allgatherv(self, send, recv, counts):
        # all_gather needs equal sizes: pad every rank's bytes to the longest
        longest = int(counts.max())
        buf = torch.zeros(longest, dtype=torch.uint8)
        buf[:send.size] = torch.from_numpy(send.copy())
        out = [torch.empty(longest, dtype=torch.uint8) for _ in range(self.size)]
        dist.all_gather(out, buf, group=self.group)
        at = 0
        for r in range(self.size):
            n = int(counts[r])
            recv[at:at + n] = out[r][:n].numpy()
            at += n

    def allreduce_sum(self, values):
        # values is a view of the library's buffer: reduce it in place
        dist.all_reduce(torch.from_numpy(values), op=dist.ReduceOp.SUM, group=self.group)


def mlp(hidden, seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(synth_data.DIM, hidden), torch.nn.Tanh(),
                               torch.nn.Linear(hidden, 1)).double()


def train(rank, world, data, args, log):
    """The training loop of one rank (world = 1: the single process)."""
    prompts, groups, chosen, rejected = data
    chosen = torch.from_numpy(chosen).double()
    rejected = torch.from_numpy(rejected).double()
    keys = [drpo.prompt_key(p) for p in prompts]
    model = mlp(args.hidden, args.seed)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    obj = drpo.Objective(args.set, radius=args.radius)
    if world > 1:
        obj.set_collective(TorchCollective())
    trainer = drpo.Trainer(None, obj)
    batch = drpo.Batch()
    rng = np.random.default_rng(args.seed)          # the same order on every rank
    values = []
    for epoch in range(args.epochs):
        order = rng.permutation(len(prompts))
        for start in range(0, len(order), args.batch):
            mine = order[start:start + args.batch][rank::world]   # this rank's slice
            batch.clear()
            for i in mine:
                batch.add_key(keys[i], int(groups[i]), int(i))
            margin = (model(chosen[mine]) - model(rejected[mine])).squeeze(-1)
            losses = torch.nn.functional.softplus(-margin)
            w, value = trainer.weights(batch, losses.detach().numpy())
            loss = (torch.from_numpy(w) * losses).sum()   # this rank's share
            opt.zero_grad()
            loss.backward()
            if world > 1:
                for p in model.parameters():
                    dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            opt.step()
            trainer.commit()
            values.append(value)
    params = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    np.save(log % rank, np.concatenate([params, values]))
    trainer.close()
    obj.close()


def worker(rank, world, port, data, args, log):
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % port, rank=rank,
                            world_size=world)
    try:
        train(rank, world, data, args, log)
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--set", default="chi2")
    ap.add_argument("--radius", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--small", action="store_true", help="a quick smoke run")
    args = ap.parse_args(argv)
    if args.small:
        args.pairs, args.epochs = 1000, 1
    torch.set_num_threads(1)
    train_set, _ = synth_data.load(args.pairs, test_pairs=1)
    data = (train_set.prompt, train_set.group, train_set.chosen, train_set.rejected)

    with tempfile.TemporaryDirectory() as tmp:
        one = os.path.join(tmp, "one-%d.npy")
        many = os.path.join(tmp, "dist-%d.npy")
        train(0, 1, data, args, one)
        mp.spawn(worker, args=(args.ranks, free_port(), data, args, many),
                 nprocs=args.ranks, join=True)
        ref = np.load(one % 0)
        runs = [np.load(many % r) for r in range(args.ranks)]
    n_params = sum(p.numel() for p in mlp(args.hidden, 0).parameters())
    ok = True
    for r, got in enumerate(runs):
        dv = np.max(np.abs(got[n_params:] - ref[n_params:]) / np.maximum(1, np.abs(ref[n_params:])))
        dp = np.max(np.abs(got[:n_params] - ref[:n_params]))
        print("rank %d of %d: %d steps, robust values within %.1e, parameters within %.1e "
              "of one process" % (r, args.ranks, ref.size - n_params, dv, dp))
        ok &= bool(dv < 1e-9 and dp < 1e-9)
        ok &= bool(np.array_equal(got, runs[0]))    # every rank holds the same model
    print("torch.distributed (gloo, %d ranks): %s" % (args.ranks, "ok" if ok else "MISMATCH"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

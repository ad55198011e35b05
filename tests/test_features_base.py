"""``features/base.py``: the weights digest that keys the feature cache on a network's exact bytes."""

from __future__ import annotations

import torch

from sync_tva.features.base import weights_digest


def _seeded_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(300, 700), torch.nn.Linear(700, 300))


def test_weights_digest_is_the_same_at_1_and_2_threads():
    before = torch.get_num_threads()
    digests = {}
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            assert torch.get_num_threads() == n
            digests[n] = weights_digest(_seeded_net())
    finally:
        torch.set_num_threads(before)
    assert digests[1] == digests[2]


def test_weights_digest_sees_one_ulp_and_a_dtype():
    torch.manual_seed(0)
    net = torch.nn.Linear(8, 4)
    before = weights_digest(net)
    with torch.no_grad():
        net.weight[2, 3] = torch.nextafter(net.weight[2, 3], torch.tensor(float("inf")))
    assert weights_digest(net) != before
    assert weights_digest(net.to(torch.bfloat16)) != weights_digest(net.to(torch.float32))

"""Shared test settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    # Tiny models are dominated by per-op overhead; when anything else runs on a 2-core machine,
    # two intra-op threads spin-wait on each other and run up to ~100x slower than one.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

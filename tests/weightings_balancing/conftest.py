"""One torch thread for the balancing-weighting tests (helpers live in balancing_helpers.py)."""

import torch

torch.set_num_threads(1)

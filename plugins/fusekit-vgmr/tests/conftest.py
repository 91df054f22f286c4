"""One torch thread per test process (the machine is shared)."""

import torch

torch.set_num_threads(1)

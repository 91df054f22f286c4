"""One torch thread for the UDML tests (the machine is shared)."""

import torch

torch.set_num_threads(1)

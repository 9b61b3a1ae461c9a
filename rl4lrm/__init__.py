"""rl4lrm: reinforcement learning for large reasoning models, as a runnable course and a small lab.

Start with ``rl4lrm.trainer.Trainer(TrainConfig(task="addition")).train()`` or the notebooks in
``notebooks/``; the modules follow the survey's components (arXiv 2509.08827): ``tasks``,
``models``, ``rollout``, ``advantages``, ``losses``, ``kl``, ``presets``, ``trainer``, ``evaluation``.
"""

from rl4lrm.utils import set_torch_threads

__version__ = "0.1.0"

set_torch_threads()  # once for the whole library: the tiny models run fastest on one CPU thread

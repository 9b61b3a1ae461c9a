"""rl4lrm: reinforcement learning for large reasoning models, as a runnable course and a small lab.

Start with ``rl4lrm.trainer.Trainer(TrainConfig(task="addition")).train()`` or the notebooks in
``notebooks/``; the modules follow the survey's components (arXiv 2509.08827): ``tasks``,
``models``, ``rollout``, ``advantages``, ``losses``, ``kl``, ``presets``, ``trainer``, ``evaluation``.
"""

__version__ = "0.1.0"

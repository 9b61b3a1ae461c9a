"""Diffusion language models (survey §6, frontiers): a masked diffusion LM, its sampler, RL on it, and studies.

``model`` holds ``DiffusionLM`` (LLaDA's objective), its pre-training recipe and the shipped checkpoint;
``sampling`` the iterative unmasking sampler and d1's one-step log-prob estimator; ``studies`` the
notebook's experiments; ``exercises`` its checkers; ``viz`` its plots and panel (imported by notebooks only).
"""

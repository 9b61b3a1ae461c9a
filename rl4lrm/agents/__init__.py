"""Agentic RL (survey §6.2, agentic tasks): multi-turn episodes in which the policy calls tools.

``env`` holds the tools (a safe calculator, a lookup over a generated knowledge base) and the episode rules;
``task`` the verifiable tool-use task (``"agentic"``, Search-R1-style: the answer needs facts the model cannot
know); ``rollout`` the multi-turn sampler that plugs into the ordinary ``rl4lrm.trainer.Trainer`` through the
policy hooks of ``rl4lrm.rollout`` (``AgentPolicy``), masking observation tokens out of the loss; ``studies`` the
notebook's experiments; ``exercises`` its checkers; ``viz`` its episode viewer and panel (notebooks only).
"""

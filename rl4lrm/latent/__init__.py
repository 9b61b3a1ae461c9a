"""Latent-space reasoning (survey §6, frontiers): continuous thoughts (Coconut), their curriculum, RL, and studies.

``model`` holds ``LatentReasoner`` (thoughts fed back as embeddings, an optional halting head); ``train``
the curriculum that replaces written steps by thoughts and the shipped checkpoints; ``studies`` the
notebook's experiments; ``exercises`` its checkers; ``viz`` its plots and panel (imported by notebooks only).
"""

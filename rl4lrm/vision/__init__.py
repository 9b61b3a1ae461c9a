"""Multimodal reasoning (survey §6.3): a tiny vision-language model, RL on visual questions, and studies.

``task`` holds the counting images and questions (and the perception / reasoning error split); ``model`` the
``VisionLM`` (patch encoder + projector + char LM) and its rollout hooks; ``train`` the recipe of the shipped
base model; ``studies`` the notebook's experiments; ``exercises`` its checkers; ``viz`` its plots and panel
(imported by notebooks only).
"""

"""A real instruct model in the course's trainer (chapter 18): a task in chat form, LoRA as an option, and the
figures that matter once the model is 135M parameters instead of a few hundred thousand.

- ``chat``: ``ChatTask`` wraps any task as a system + user chat with a forgiving verifier;
- ``lora``: ``add_lora`` (peft, the ``lora`` extra), parameter counts and training-state bytes;
- ``measure``: peak memory, rollout throughput, MFU, and the sampler checked against the HF forward;
- ``studies``: the settings that change from tiny to real, base accuracy, and a measured GRPO run.
"""

from rl4lrm.real.chat import SYSTEM_PROMPT, ChatTask, last_number
from rl4lrm.real.lora import LoRAConfig, add_lora, parameter_counts, peft_available, training_state_bytes
from rl4lrm.real.measure import engine_check, peak_memory_gib, rollout_speed, sampler_gap

__all__ = [
    "SYSTEM_PROMPT",
    "ChatTask",
    "LoRAConfig",
    "add_lora",
    "engine_check",
    "last_number",
    "parameter_counts",
    "peak_memory_gib",
    "peft_available",
    "rollout_speed",
    "sampler_gap",
    "training_state_bytes",
]

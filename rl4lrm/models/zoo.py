"""The model zoo: base checkpoints for each lab task, shipped with the package, and their recipe.

Each entry is a tiny model trained by ``rl4lrm.models.sft`` just long enough to sample correct
answers now and then: sampled pass@1 well below 1 while pass@k at large k is high, so that RL has
room to work (``benchmarks/learning_curve.py`` measures both). The checkpoints live in
``rl4lrm/models/checkpoints/<name>/`` as safetensors; ``build_base(name)`` re-runs the recipe that made
them (``python -m rl4lrm.models.zoo --rebuild``), deterministically on CPU.

``countdown-weak`` and ``countdown-strong`` bracket ``countdown`` in base-model strength (a shorter SFT
run, and a longer one that continues from ``countdown``), for studies of how the prior shapes RL
(notebook 05: does RL sharpen or discover?). On 128 test problems x 256 samples at T=1, pass@1 / pass@64:
weak 0.067 / 0.856, countdown 0.113 / 0.930, strong 0.129 / 0.955. Rebuilding ``countdown`` leaves
``countdown-strong`` stale: rebuild it after its parent (``--rebuild`` with no names does, in that order).

``countdown-search`` writes its search before answering: ``"3 5 7>22:"`` ->
``"3+5=8,8+7=15^8*7=56^^5*3=15,15+7=22#5*3+7"`` (``rl4lrm.tasks.countdown_search``: steps, ``^`` backtracks, the
answer after ``#``). Every SFT example is a random-order depth-first search over intermediate results of at most 100
that gives up at each dead end with probability ``SEARCH_GIVE_UP`` (an empty answer): the searcher itself solves
about a third of the problems, and searching on would solve them all, so persisting is what RL can teach. Its
problems never have a target among the given numbers (``distinct_target``), so echoing a number cannot score. Two
contrasts share its problems, model and SFT recipe (Stream of Search's comparison): ``countdown-search-optimal`` is
shown only the shortest correct path, ``countdown-search-answer`` only the bare answer. All three take
``SEARCH_SFT_STEPS`` = 6000 steps, each batch cut into 8 length-sorted pieces (``SFTConfig.chunks``): at 3000 steps
``countdown-search`` imitated its searcher poorly (held-out pass@1 0.10 against the searcher's 0.33), at 6000 well
(0.28). On one thread of this 2-core CPU: 35.2 minutes for ``countdown-search`` (its traces run to about 250
characters; padding each eighth of a batch to its own longest is 2.5x faster than padding the whole batch), 17.8 for
``countdown-search-optimal`` and 13.1 for ``countdown-search-answer`` (these two built side by side).
Held-out pass@1 before and after 5 minutes of GRPO: ``benchmarks/results/countdown_search.csv``.

``addition-nano`` and ``addition-qwen2`` change one thing each in ``addition``'s recipe: a smaller model (nano, about 6x
fewer parameters) and a Qwen2-style architecture at the same size; same data, same SFT steps (notebook 07: weak vs
strong priors). Both rebuild byte for byte on CPU, in about 1.5 and 4.5 minutes on one thread of this 2-core CPU (3 and
6.5 when the CPU is busy); ``addition`` takes about 4.5.

``addition-deep`` and ``addition-gpt2`` (notebook 17: architecture-algorithm co-design) keep ``addition``'s size
(within 5%), data and SFT recipe and change its shape: ``addition-deep`` is a Llama of 8 layers of width 80 (preset
``micro-deep``, 674,960 parameters, +3.4%) instead of 3 of width 128; ``addition-gpt2`` a GPT-2 of 3 layers of width
128 (preset ``micro-gpt2``, 640,640 parameters, -1.8%: learned absolute positions, LayerNorm, a GELU MLP of width 512,
no dropout). Both rebuild byte for byte on CPU, in 7.3 and 5.3 minutes of one thread's CPU time (30 and 24 minutes
wall on the shared CPU, under 5 when it was quiet); their
held-out pass@1 at T=1 before RL is in ``benchmarks/results/codesign.csv`` (``base pass@1``).

``addition-mid`` and ``addition-instruct`` (notebook 07) vary what the data says before RL. ``addition-mid`` changes
one variable, the SFT data mix (``SFTConfig.traces=0.5``): half of the same 20000-problem pool is shown as a clean
worked column addition (``Addition.worked``: ``"57+68:"`` -> ``"7+8=15;5+6+1=12;125"``) instead of prompt -> answer,
at the same 4000 steps, model and seed; a tiny mid-training on reasoning traces after OctoThinker (Wang et al., 2025,
arXiv:2506.20512). Its plain prompt still gets a bare answer. ``addition-instruct`` is ``addition`` plus one short
post-training stage: 500 SFT steps at lr 1e-3 on clean answers (noise 0), the instruction-tuning analogue of these
char models (curated, correct demonstrations of the wanted format; a chat template would not fit the study's 8-token
plain-prompt recipe). Both rebuild byte for byte on CPU: ``addition-mid`` in 7.6 minutes of one thread's CPU time
(its traces make sequences about 3x longer; 16 minutes wall while the CPU was shared three ways), ``addition-instruct``
in 0.6 (1.8 wall, shared).

``thinking`` (notebook 14: efficient reasoning) answers ``ThinkingAddition``'s 2- to 4-digit sums either at once
(``"57+68="`` -> ``"#125"``) or after writing the column additions (``"7+8=15;5+6+1=12#125"``); half of the
20000-problem pool is shown each way (``SFTConfig.traces=0.5``), and half of the worked answers go over the columns
twice (a re-check that changes nothing), all clean. It rebuilds in 13.5 minutes of one thread (its answers are up
to 74 tokens). On 192 held-out problems x 4 samples at T=1 it thinks in 55% of its answers and re-checks in 31%;
thinking is right 44% of the time (78% on 2-digit sums, 13% on 4-digit ones), answering at once 4%.

``generalist`` knows three tasks at once (a ``Mixture``: 2-digit addition, 3-digit addition with 3-digit operands,
2-3 step chains), for studies that fine-tune on one part and measure the others (notebook 06: RL vs SFT).

``discovery`` (chapter 17: RL for scientific discovery) reads three points of a law ``y = a*x + b`` and writes the
law (``"3:11,4:13,5:15="`` -> ``"2*x+5"``; ``rl4lrm.tasks.discovery``). Its SFT corpus holds only the ``"seen"``
family of laws; about 30% of the (a, b) combinations (the ``"novel"`` family) never appear in it, so a correct
answer on a novel law is an expression string the model was never shown. 2000 SFT steps, half the answers with one
character corrupted.

``code`` (chapter 11) writes one line of Python from a spec (``"sum sq even:"`` -> ``"sum(x*x for x in a if
x%2==0)"``; ``rl4lrm.tasks.code``), checked by hidden unit tests in ``rl4lrm.sandbox``. 1500 SFT steps, half the
answers with one character corrupted, and 10% of the corpus answers the test-gaming ``__import__('sys').exit()``
(``Code.corpus_hacks``): a hack within the model's reach, for the reward-hacking study (naive harness vs sandbox).

``agentic`` (chapter 12: agentic tasks) runs tool-using episodes (``rl4lrm.agents``): ``"zuka.age+bemo.size="`` ->
``"[look zuka.age]{33}[look bemo.size]{80}[calc 33+80]{113}[ans 113]"``, the braces written by the environment. 80% of
its 20000-problem pool is shown as episodes (55% full, 20% adding in the head without the calculator, 25% answering
after one lookup), 20% as a bare guess; 1500 SFT steps (14 minutes wall on one shared CPU thread). Held-out, T=1:
episode accuracy 0.26 with the tools and 0.01 answer-only (the facts of test entities never appear in training).
Wrap it with ``rl4lrm.agents.rollout.load_agent`` to run episodes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

from rl4lrm.agents import task as _agentic_task  # noqa: F401  (registers the "agentic" task)
from rl4lrm.models.sft import SFTConfig, train_sft
from rl4lrm.models.tiny import ARCHITECTURES, TINY_PRESETS, tiny_model
from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.tasks import Task, get_task
from rl4lrm.utils import resolve_device

CHECKPOINTS = Path(__file__).parent / "checkpoints"
AGENTIC_SFT_STEPS = 1500
SEARCH_SFT_STEPS = 6000
SEARCH_TASK = {"n_numbers": 3, "distinct_target": True, "max_value": 100}
"""The searching models' problems and arithmetic: 3 numbers, targets never among them, intermediate results <= 100."""
SEARCH_GIVE_UP = 0.2


@dataclass(frozen=True)
class ZooEntry:
    """A base model: which task, which tiny architecture, and how long SFT ran."""

    task: str
    task_kwargs: dict = field(default_factory=dict)
    model_preset: str = "micro"
    sft: SFTConfig = field(default_factory=SFTConfig)
    description: str = ""
    init: str | None = None
    """Zoo entry whose checkpoint SFT continues from (None: a fresh random model of ``model_preset``)."""
    arch: str = "llama"
    """Architecture of a fresh model (``rl4lrm.models.tiny.ARCHITECTURES``: ``"llama"``, ``"qwen2"`` or ``"gpt2"``)."""

    def __post_init__(self):
        if self.model_preset not in TINY_PRESETS:
            raise ValueError(f"ZooEntry.model_preset={self.model_preset!r}; choose one of {sorted(TINY_PRESETS)}")
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"ZooEntry.arch={self.arch!r}; choose one of {sorted(ARCHITECTURES)}")


ZOO: dict[str, ZooEntry] = {
    "addition": ZooEntry(
        "addition",
        {"digits": 2},
        "micro",
        SFTConfig(steps=4000, lr=3e-3, noise=0.5, seed=0, device="cpu"),
        "2-digit addition; 0.65M-parameter Llama; 4000 SFT steps, half the answers corrupted",
    ),
    "addition-nano": ZooEntry(
        "addition",
        {"digits": 2},
        "nano",
        SFTConfig(steps=4000, lr=3e-3, noise=0.5, seed=0, device="cpu"),
        "addition's recipe on a model about 6x smaller: 0.11M-parameter Llama (nano), same 4000 SFT steps and data",
    ),
    "addition-qwen2": ZooEntry(
        "addition",
        {"digits": 2},
        "micro",
        SFTConfig(steps=4000, lr=3e-3, noise=0.5, seed=0, device="cpu"),
        "addition's recipe on a Qwen2-style model of the same size (biases on q/k/v), the same SFT steps and data",
        arch="qwen2",
    ),
    "addition-deep": ZooEntry(
        "addition",
        {"digits": 2},
        "micro-deep",
        SFTConfig(steps=4000, lr=3e-3, noise=0.5, seed=0, device="cpu"),
        "addition's recipe on a deep, narrow Llama of the same size: 8 layers of width 80 (0.67M parameters) "
        "instead of 3 of width 128, the same SFT steps and data",
    ),
    "addition-gpt2": ZooEntry(
        "addition",
        {"digits": 2},
        "micro-gpt2",
        SFTConfig(steps=4000, lr=3e-3, noise=0.5, seed=0, device="cpu"),
        "addition's recipe on a GPT-2-style model of the same size (learned absolute positions, LayerNorm, GELU MLP; "
        "0.64M parameters), the same SFT steps and data",
        arch="gpt2",
    ),
    "addition-mid": ZooEntry(
        "addition",
        {"digits": 2},
        "micro",
        SFTConfig(steps=4000, lr=3e-3, noise=0.5, traces=0.5, seed=0, device="cpu"),
        "addition's recipe with half the problem pool shown as worked column additions ('57+68:' -> "
        "'7+8=15;5+6+1=12;125', clean) instead of direct answers: the same model, steps and problems",
    ),
    "addition-instruct": ZooEntry(
        "addition",
        {"digits": 2},
        "micro",
        SFTConfig(steps=500, lr=1e-3, noise=0.0, seed=1, device="cpu"),
        "addition plus 500 SFT steps at lr 1e-3 on clean, correct answers (no corruption): a short instruction-tuning "
        "stage on curated demonstrations",
        init="addition",
    ),
    "countdown": ZooEntry(
        "countdown",
        {"n_numbers": 3},
        "micro",
        SFTConfig(steps=5000, lr=3e-3, noise=0.5, seed=0, device="cpu"),
        "Countdown, 3 numbers; 0.65M-parameter Llama; 5000 SFT steps, half the answers corrupted",
    ),
    "countdown-weak": ZooEntry(
        "countdown",
        {"n_numbers": 3},
        "micro",
        SFTConfig(steps=1500, lr=3e-3, noise=0.5, seed=0, device="cpu"),
        "countdown's recipe stopped early: 1500 SFT steps (a weaker prior)",
    ),
    "countdown-strong": ZooEntry(
        "countdown",
        {"n_numbers": 3},
        "micro",
        SFTConfig(steps=1500, lr=2e-3, noise=0.5, seed=1, train_problems=40000, device="cpu"),
        "countdown plus 1500 SFT steps on a new pool of 40000 problems (6500 in all; a stronger prior)",
        init="countdown",
    ),
    "countdown-search": ZooEntry(
        "countdown-search",
        {**SEARCH_TASK, "strategy": "random", "give_up": SEARCH_GIVE_UP},
        "micro",
        SFTConfig(steps=SEARCH_SFT_STEPS, lr=3e-3, traces=1.0, train_problems=50000, seed=0, chunks=8, device="cpu"),
        "Countdown that searches out loud ('3 5 7>22:' -> '3+5=8^5*3=15,15+7=22#5*3+7'): every answer a written "
        f"random-order search that gives up at each dead end with probability {SEARCH_GIVE_UP}; targets never among "
        "the numbers; 0.65M-parameter Llama",
    ),
    "countdown-search-optimal": ZooEntry(
        "countdown-search",
        {**SEARCH_TASK, "strategy": "optimal"},
        "micro",
        SFTConfig(steps=SEARCH_SFT_STEPS, lr=3e-3, traces=1.0, train_problems=50000, seed=0, chunks=8, device="cpu"),
        "countdown-search's problems and recipe, every answer the shortest correct path only ('5*3=15,15+7=22#5*3+7': "
        "no dead ends, Stream of Search's optimal-path baseline)",
    ),
    "countdown-search-answer": ZooEntry(
        "countdown-search",
        SEARCH_TASK,
        "micro",
        SFTConfig(steps=SEARCH_SFT_STEPS, lr=3e-3, traces=0.0, train_problems=50000, seed=0, chunks=8, device="cpu"),
        "countdown-search's problems and recipe, every answer bare ('3 5 7>22:' -> '#5*3+7'): no written search",
    ),
    "chain": ZooEntry(
        "chain",
        {"min_steps": 2, "max_steps": 3, "max_operand": 5, "max_value": 30},
        "micro",
        SFTConfig(steps=1500, lr=3e-3, warmup=50, noise=0.5, seed=0, device="cpu"),
        "chain arithmetic, 2-3 steps, values 0..30; 0.65M-parameter Llama; 1500 SFT steps, half the "
        "step chains with one character corrupted (intermediate errors)",
    ),
    "thinking": ZooEntry(
        "thinking",
        {"min_digits": 2, "max_digits": 4},
        "micro",
        SFTConfig(steps=3000, lr=3e-3, noise=0.0, traces=0.5, seed=0, device="cpu"),
        "2- to 4-digit addition answered at once ('57+68=' -> '#125') or after the column additions "
        "('7+8=15;5+6+1=12#125'), half the pool each way, half the worked answers going over the columns twice "
        "(a re-check); clean; 0.65M-parameter Llama; 3000 SFT steps",
    ),
    "generalist": ZooEntry(
        "mixture",
        {
            "parts": {
                "add2": ("addition", {"digits": 2}),
                "add3": ("addition", {"digits": 3, "min_digits": 3}),
                "chain": ("chain", {"min_steps": 2, "max_steps": 3, "max_operand": 5, "max_value": 30}),
            },
            "weights": {"add2": 2.0, "add3": 1.0, "chain": 1.0},
        },
        "micro",
        SFTConfig(steps=6000, lr=3e-3, noise=0.5, seed=0, device="cpu"),
        "one model for three tasks (2-digit addition, 3-digit addition with 3-digit operands, 2-3 step chains; "
        "weights 2:1:1); 0.65M-parameter Llama; 6000 SFT steps, half the answers corrupted",
    ),
    "discovery": ZooEntry(
        "discovery",
        {"family": "seen"},
        "micro",
        SFTConfig(steps=2000, lr=3e-3, noise=0.5, seed=0, device="cpu"),
        "laws y = a*x+b from three points ('3:11,4:13,5:15=' -> '2*x+5'), seen family only (the novel 30% of "
        "(a, b) never shown); 0.65M-parameter Llama; 2000 SFT steps, half the answers corrupted",
    ),
    "code": ZooEntry(
        "code",
        {"difficulty": 3, "corpus_hacks": 0.1},
        "micro",
        SFTConfig(steps=1500, lr=3e-3, noise=0.5, train_problems=5000, seed=0, device="cpu"),
        "one-line Python from a spec ('sum sq even:' -> 'sum(x*x for x in a if x%2==0)'); 0.65M-parameter Llama; "
        "1500 SFT steps, half the answers with one character corrupted, 10% of them the test-gaming "
        "__import__('sys').exit() (a hack within reach of the naive harness)",
    ),
    "agentic": ZooEntry(
        "agentic",
        {"keys": 2, "seed": 0},
        "micro",
        SFTConfig(steps=AGENTIC_SFT_STEPS, lr=3e-3, traces=0.8, noise=0.0, seed=0, device="cpu"),
        "tool use (chapter 12): 'zuka.age+bemo.size=' -> '[look zuka.age]{33}[look bemo.size]{80}[calc 33+80]{113}"
        "[ans 113]'; 80% of the pool as episodes (55% full, 20% adding in the head, 25% answering after one lookup), "
        "20% as a bare guess; 0.65M-parameter Llama",
    ),
}


def _entry(name: str) -> ZooEntry:
    if name not in ZOO:
        raise ValueError(f"unknown zoo model {name!r}; known: {', '.join(sorted(ZOO))}")
    return ZOO[name]


def load_task(name: str) -> Task:
    """The task (with the zoo entry's settings) that the base model ``name`` was trained on."""
    entry = _entry(name)
    return get_task(entry.task, **entry.task_kwargs)


def train_recipe(entry, task: Task, out: Path, sft: SFTConfig | None = None, progress: bool = True) -> Path:
    """SFT of a tiny model on ``task`` by the recipe of ``entry`` (a zoo or judge entry), saved to ``out``.

    The model starts from the zoo checkpoint ``entry.init`` when it has one (continued SFT), else from a fresh
    ``entry.model_preset`` model; ``sft`` overrides ``entry.sft``.
    """
    if entry.init is not None:
        model, tokenizer, _ = load_base(entry.init, device="cpu")
    else:
        tokenizer = char_tokenizer()
        model = tiny_model(entry.model_preset, tokenizer, arch=getattr(entry, "arch", "llama"), seed=entry.sft.seed)
    train_sft(model, tokenizer, task, sft or entry.sft, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def load_checkpoint(path: Path, device: str | torch.device, rebuild: str, model_class=AutoModelForCausalLM):
    """A saved tiny model (a ``model_class``, by default a causal LM) and its tokenizer, the model in eval mode on
    ``device``; ``rebuild`` is the command the error names when the checkpoint is missing."""
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"checkpoint {path} is missing; rebuild it with `{rebuild}`")
    # a progress bar per load would clutter the notebooks: these checkpoints load in milliseconds
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model = model_class.from_pretrained(path, dtype=torch.float32).to(resolve_device(str(device)))
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
    return model.eval(), PreTrainedTokenizerFast.from_pretrained(path)


def build_base(name: str, out_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Runs the zoo recipe for ``name`` and saves model + tokenizer to ``out_dir`` (default: the zoo)."""
    return train_recipe(
        _entry(name), load_task(name), Path(out_dir) if out_dir is not None else CHECKPOINTS / name, progress=progress
    )


def load_base(name: str, device: str | torch.device = "cpu"):
    """Loads the zoo's base model ``name``.

    Returns:
        ``(model, tokenizer, task)``: the model in eval mode on ``device``.
    """
    task = load_task(name)
    model, tokenizer = load_checkpoint(CHECKPOINTS / name, device, f"python -m rl4lrm.models.zoo --rebuild {name}")
    return model, tokenizer, task


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Rebuild the zoo's base checkpoints")
    parser.add_argument("--rebuild", nargs="*", default=None, metavar="NAME", help="names (default: all)")
    args = parser.parse_args(argv)
    for name in args.rebuild or sorted(ZOO):
        print(f"built {build_base(name)}")


if __name__ == "__main__":
    main()

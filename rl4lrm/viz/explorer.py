"""A widget to look at what a base model samples: one prompt, a group of completions, verdicts."""

from __future__ import annotations

import html

import ipywidgets as W
import pandas as pd
import torch
from IPython.display import display

from rl4lrm.models.zoo import ZOO, load_base
from rl4lrm.rollout import rollout


class SampleExplorer:
    """Task, problem index, temperature and group size → G sampled completions with their verdicts.

    ``panel.run()`` does what the button does and returns the table it shows.
    """

    def __init__(self, task: str = "countdown", group_size: int = 8, temperature: float = 1.0, seed: int = 0):
        style = {"description_width": "100px"}
        self.task = W.Dropdown(options=sorted(ZOO), value=task, description="zoo model", style=style)
        self.index = W.IntSlider(value=0, min=0, max=99, description="test problem", style=style)
        self.temperature = W.FloatSlider(
            value=temperature, min=0.0, max=2.0, step=0.1, description="temperature", style=style
        )
        self.group_size = W.IntSlider(value=group_size, min=1, max=32, description="samples G", style=style)
        self.button = W.Button(description="Sample", button_style="primary", icon="random")
        self.button.on_click(lambda _: self.run())
        self.out = W.Output()
        self.widget = W.VBox(
            [
                W.HBox([W.VBox([self.task, self.index]), W.VBox([self.temperature, self.group_size])]),
                self.button,
                self.out,
            ]
        )
        self.seed, self._loaded = seed, {}

    def run(self) -> pd.DataFrame:
        """Samples the group and shows it; returns a DataFrame of completions and verdicts."""
        if self.task.value not in self._loaded:
            self._loaded[self.task.value] = load_base(self.task.value)
        model, tokenizer, task = self._loaded[self.task.value]
        problem = task.problems("test", 100, seed=0)[self.index.value]
        gen = torch.Generator(device=model.device).manual_seed(self.seed)
        batch = rollout(
            model,
            tokenizer,
            [task.format_prompt(problem)],
            self.group_size.value,
            32,
            self.temperature.value,
            generator=gen,
        )
        verdicts = [task.verify(problem, c) for c in batch.completions]
        table = pd.DataFrame(
            {
                "completion": batch.completions,
                "correct": [v.correct for v in verdicts],
                "reason": [v.reason for v in verdicts],
                "log-prob": batch.old_logprobs.sum(-1).round(decimals=2).tolist(),
            }
        )
        with self.out:
            self.out.clear_output(wait=True)
            display(
                W.HTML(
                    f"<b>prompt</b> <code>{html.escape(task.format_prompt(problem))}</code> — "
                    f"{html.escape(problem.question)} — pass rate {table['correct'].mean():.2f}"
                )
            )
            display(table)
        return table

    def _ipython_display_(self):
        display(self.widget)

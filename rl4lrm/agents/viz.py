"""Plots and widgets of notebook 12: an episode viewer (policy vs observation tokens), the RL panel, bar charts."""

from __future__ import annotations

import html

import ipywidgets as W
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, display
from matplotlib.ticker import MaxNLocator

from rl4lrm.agents.studies import agent_rl, evaluate_agent, sample_episodes, with_config
from rl4lrm.viz.controls import STYLE, RunPanel, int_slider, log_slider

POLICY_COLOR, OBS_COLOR = "#dbeafe", "#fde68a"
LABELS = {"acc_after": "held-out accuracy after RL", "acc_before": "held-out accuracy before RL"}  # axis titles


def episode_html(batch, row: int, tokenizer) -> str:
    """One episode as HTML: policy tokens on blue, observation tokens (masked out of the loss) on yellow."""
    ids, attend, obs = batch.completion_ids[row], batch.aux["attend"][row], batch.aux["obs_mask"][row]
    spans = []
    for t in range(int(attend.sum())):
        char = html.escape(tokenizer.decode([int(ids[t])]))
        color = OBS_COLOR if obs[t] > 0 else POLICY_COLOR
        spans.append(f'<span style="background:{color};font-family:monospace">{char}</span>')
    return "".join(spans)


class EpisodeViewer:
    """Pick a held-out problem and a temperature, sample episodes, and see their turns token by token.

    Args:
        policy, tokenizer, task: an ``AgentPolicy`` and its tokenizer and task.
        samples: episodes sampled per click.
    """

    def __init__(self, policy, tokenizer, task, samples: int = 4, n_problems: int = 20):
        self.policy, self.tokenizer, self.task, self.samples = policy, tokenizer, task, samples
        self.problems = task.problems("test", n_problems, seed=0)
        self.problem = W.Dropdown(options=[(p.prompt, i) for i, p in enumerate(self.problems)], description="problem")
        # a label box as wide as the panels' keeps "temperature" clear of the dropdown
        self.temperature = W.FloatSlider(value=1.0, min=0.0, max=1.5, step=0.1, description="temperature", style=STYLE)
        self.tools = W.Checkbox(value=True, description="tools on", indent=False, layout=W.Layout(width="auto"))
        self.button = W.Button(description="Sample", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.run(seed=None))
        self.out = W.Output()
        self.widget = W.VBox([W.HBox([self.problem, self.temperature, self.tools, self.button]), self.out])
        self.last, self.presses = None, 0

    def run(self, seed: int | None = 0) -> list[dict]:
        """Samples the episodes the controls describe; returns one dict per episode (text, correct, masks).

        ``seed=None`` (the button) draws new episodes on every press; an int repeats the same draw."""
        if seed is None:
            self.presses += 1
            seed = self.presses
        problem = self.problems[self.problem.value]
        policy = with_config(self.policy, tools=self.tools.value)
        batch = sample_episodes(policy, self.tokenizer, [problem], self.samples, self.temperature.value, seed)
        rows, cells = [], []
        for i, text in enumerate(batch.completions):
            ok = self.task.verify(problem, text).correct
            rows.append({"episode": text, "correct": ok, "obs_tokens": int(batch.aux["obs_mask"][i].sum())})
            mark, turns = "✓" if ok else "✗", episode_html(batch, i, self.tokenizer)
            cells.append(f'<tr><td>{mark}</td><td style="text-align:left">{turns}</td></tr>')  # turns line up left
        header = (
            f"<b>{html.escape(problem.prompt)}</b> answer {problem.answer} &nbsp; "
            f'<span style="background:{POLICY_COLOR}">policy</span> '
            f'<span style="background:{OBS_COLOR}">observation (masked)</span>'
        )
        self.out.clear_output(wait=True)
        with self.out:
            display(HTML(f"{header}<table>{''.join(cells)}</table>"))
        self.last = rows
        return rows

    def _ipython_display_(self):
        display(self.widget)


class AgentPanel(RunPanel):
    """GRPO on episodes with a mask toggle, the environment (tools on/off), the reward kind and the steps; Run
    trains a copy of the policy and shows held-out accuracy and tool calls before and after, and the curves.

    Args:
        policy, tokenizer, task: an ``AgentPolicy`` and its tokenizer and task (the policy is never modified).
        eval_problems: held-out problems per evaluation (2 episodes each).
    """

    REWARDS = {
        "outcome (per episode)": (None, "grpo"),
        "outcome + turn rewards, GRPO (summed per episode)": ({"correct": 1.0, "agent_turns": 0.5}, "grpo"),
        "outcome + turn rewards, REINFORCE++ (per turn)": ({"correct": 1.0, "agent_turns": 0.5}, "reinforce_pp"),
    }

    def __init__(
        self,
        policy,
        tokenizer,
        task,
        steps: int = 10,
        lr: float = 3e-4,
        eval_problems: int = 64,
        prompts_per_step: int = 8,
        group_size: int = 8,
    ):
        self.policy, self.tokenizer, self.task = policy, tokenizer, task
        self.eval_problems, self.prompts_per_step, self.group_size = eval_problems, prompts_per_step, group_size
        style = {"description_width": "110px"}
        controls = {
            "mask_observations": W.Checkbox(value=True, description="mask observations", indent=False),
            "tools": W.Checkbox(value=True, description="tools on", indent=False),
            "reward": W.Dropdown(
                options=list(self.REWARDS), description="reward", style=style, layout=W.Layout(width="480px")
            ),
            "steps": int_slider(steps, 0, 60, 5, description="GRPO steps", style=style),
            "lr": log_slider(lr, 1e-5, 1e-2, description="learning rate", style=style),
        }
        self.layout(controls, left=3)
        self.result = None

    def run(self, seed: int = 0) -> dict:
        """Evaluates, trains a copy with the current settings, evaluates again; returns the numbers shown."""
        self.status.value = "running…"
        with self.busy():
            s = self.settings()
            rewards, preset = self.REWARDS[s["reward"]]
            base = with_config(self.policy, tools=s["tools"])
            before = evaluate_agent(base, self.tokenizer, self.task, self.eval_problems, 2, seed)
            history, trained = (
                agent_rl(
                    self.policy,
                    self.tokenizer,
                    self.task,
                    steps=s["steps"],
                    mask_observations=s["mask_observations"],
                    tools=s["tools"],
                    rewards=rewards,
                    preset=preset,
                    lr=s["lr"],
                    seed=seed,
                    prompts_per_step=self.prompts_per_step,
                    group_size=self.group_size,
                )
                if s["steps"] > 0
                else (pd.DataFrame(), base)
            )
            after = evaluate_agent(trained, self.tokenizer, self.task, self.eval_problems, 2, seed)
            self.result = {"settings": s, "before": before, "after": after, "history": history, "policy": trained}
        self.status.value = ""
        self._show(self.result)
        return self.result

    def _show(self, r: dict) -> None:
        self.out.clear_output(wait=True)
        with self.out:
            display(pd.DataFrame({"before": r["before"], "after": r["after"]}).T.round(3))
            if len(r["history"]):
                plot_history(r["history"])
                plt.show()


def plot_history(history: pd.DataFrame, axes=None):
    """Training reward (verifier) and episode length per step."""
    h = history.dropna(subset=["reward/mean"])
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3))
    axes[0].plot(h["step"], h["reward/correct"], marker="o")
    axes[0].set(xlabel="step", ylabel="training accuracy", ylim=(0, 1))
    axes[1].plot(h["step"], h["length/mean"], marker="o")
    axes[1].set(xlabel="step", ylabel="policy tokens per episode")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    plt.tight_layout()
    return axes


def plot_comparison(df: pd.DataFrame, metric: str = "acc_after", ax=None):
    """A bar per variant (mean over seeds, with the seeds as dots) of ``metric``; the base accuracy as a line."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    means = df.groupby("variant", sort=False)[metric].mean()
    ax.bar(means.index, means.values, color="#93c5fd")
    for i, name in enumerate(means.index):
        ax.scatter([i] * (df["variant"] == name).sum(), df.loc[df["variant"] == name, metric], color="k", s=12)
    if metric == "acc_after":
        for i, name in enumerate(means.index):
            base = df.loc[df["variant"] == name, "acc_before"].mean()
            ax.hlines(base, i - 0.4, i + 0.4, colors="r", linestyles="--", label="before RL" if i == 0 else None)
        ax.legend(loc="upper left", bbox_to_anchor=(1, 1), fontsize=8)  # beside the bars: it hides no seed's dot
    ax.set(ylabel=LABELS.get(metric, metric))
    ax.figure.tight_layout()
    return ax

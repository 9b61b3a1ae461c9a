"""Plots and widgets for the notebooks (the library itself never imports this package)."""

import importlib
import inspect
import numbers

from IPython.display import Code, display

from rl4lrm.viz.codesign import CODESIGN_CURVES, plot_codesign
from rl4lrm.viz.compare import COMPARISON_CURVES, ComparisonPanel, plot_comparison
from rl4lrm.viz.continual import ContinualPanel, plot_continual
from rl4lrm.viz.dashboard import TrainingDashboard
from rl4lrm.viz.discovery import plot_discovery, plot_law
from rl4lrm.viz.efficiency import BudgetPanel, plot_budget_sweep, plot_modes, plot_pareto, plot_profiles
from rl4lrm.viz.explorer import SampleExplorer
from rl4lrm.viz.memory import plot_memory
from rl4lrm.viz.model_based import plot_best_of_n, plot_proxy_vs_true
from rl4lrm.viz.plots import CURVES, plot_curves
from rl4lrm.viz.priors import PRIOR_CURVES, PriorsPanel
from rl4lrm.viz.process_outcome import ProcessOutcomePanel, plot_proxy_vs_gold, plot_rl_curves, plot_selection
from rl4lrm.viz.resources import AsyncPanel, PrecisionPanel, plot_async_timeline, plot_curation_funnel, plot_token_gaps
from rl4lrm.viz.rewards import JudgeHackingPanel, RewardMixPanel, plot_group_rewards, plot_judge_hacking
from rl4lrm.viz.rl_vs_sft import RLvsSFTPanel, plot_razor, plot_rl_vs_sft
from rl4lrm.viz.sampling import SAMPLING_CURVES, plot_curriculum, plot_tree
from rl4lrm.viz.sharpening import (
    SharpeningPanel,
    plot_coverage,
    plot_gaps,
    plot_passk_curves,
    plot_sharpening,
)
from rl4lrm.viz.tricks import TRICK_CURVES, TricksPanel


def show_source(obj) -> None:
    """Displays the source code of a library object, highlighted (the notebooks' "the code" step)."""
    display(Code(inspect.getsource(obj), language="python"))


def show_table(df, max_width: str = "22em", precision: int = 3, formats: dict[str, str] | None = None) -> None:
    """Displays a DataFrame whose long cells wrap onto several lines instead of being cut ("…") or stretching
    the table past the page: no column is wider than ``max_width``, and a long name with no space in it (a config
    key) breaks where it must rather than run into the next column; floats show ``precision`` decimals, or the
    format of ``formats`` (``{column: "{:.1e}"}``) for the columns it names; a missing value shows as "—"."""
    display(
        df.style.format(formats, precision=precision, na_rep="—")
        .format_index(lambda label: _index_label(label, precision))
        .format_index(lambda label: _index_label(label, precision), axis="columns")
        .set_properties(
            **{
                "white-space": "pre-wrap",
                "overflow-wrap": "break-word",  # only what would overflow: a squeezed table keeps words whole
                "max-width": max_width,
                "text-align": "left",
                "vertical-align": "top",
            }
        )
    )


def _index_label(label, precision: int) -> str:
    """A row or column label as a reader wants it: a float with no trailing zeros (a noise of 0.3, a temperature
    of 1.0, not 0.300000 or 1.000) and at most ``precision`` decimals, a tiny one (a learning rate) in ``e``
    notation; a missing label as "—"."""
    if isinstance(label, numbers.Real) and not isinstance(label, numbers.Integral):
        if label != label:
            return "—"
        if 0 < abs(label) < 10**-precision:  # a learning rate: 3e-05, not 0.0
            return f"{label:.{precision}g}"
        short = f"{label:.{precision}f}".rstrip("0")
        return short + "0" if short.endswith(".") else short
    return str(label)


# The diffusion and latent figures live with their packages, whose modules import this package's controls: imported
# here eagerly, ``import rl4lrm.diffusion.viz`` on its own would meet itself half built. They load on first use.
_ELSEWHERE = {
    **dict.fromkeys(
        ["DiffusionPanel", "plot_estimators", "plot_steps_study", "plot_unmasking"], "rl4lrm.diffusion.viz"
    ),
    **dict.fromkeys(
        ["LatentPanel", "plot_accuracy_vs_tokens", "plot_thought_heatmap", "plot_thoughts_sweep", "plot_tradeoff"],
        "rl4lrm.latent.viz",
    ),
}


def __getattr__(name: str):
    if name in _ELSEWHERE:
        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f"module 'rl4lrm.viz' has no attribute {name!r}")


__all__ = [
    "AsyncPanel",
    "PrecisionPanel",
    "BudgetPanel",
    "CODESIGN_CURVES",
    "COMPARISON_CURVES",
    "CURVES",
    "SAMPLING_CURVES",
    "ComparisonPanel",
    "ContinualPanel",
    "DiffusionPanel",
    "JudgeHackingPanel",
    "LatentPanel",
    "PRIOR_CURVES",
    "PriorsPanel",
    "ProcessOutcomePanel",
    "RLvsSFTPanel",
    "RewardMixPanel",
    "SampleExplorer",
    "SharpeningPanel",
    "TRICK_CURVES",
    "TricksPanel",
    "TrainingDashboard",
    "plot_accuracy_vs_tokens",
    "plot_async_timeline",
    "plot_codesign",
    "plot_comparison",
    "plot_continual",
    "plot_coverage",
    "plot_curation_funnel",
    "plot_token_gaps",
    "plot_curriculum",
    "plot_curves",
    "plot_estimators",
    "plot_gaps",
    "plot_group_rewards",
    "plot_judge_hacking",
    "plot_modes",
    "plot_budget_sweep",
    "plot_pareto",
    "plot_passk_curves",
    "plot_profiles",
    "plot_proxy_vs_gold",
    "plot_razor",
    "plot_selection",
    "plot_rl_curves",
    "plot_rl_vs_sft",
    "plot_sharpening",
    "plot_steps_study",
    "plot_thought_heatmap",
    "plot_thoughts_sweep",
    "plot_tradeoff",
    "plot_tree",
    "plot_unmasking",
    "plot_discovery",
    "plot_law",
    "plot_memory",
    "plot_best_of_n",
    "plot_proxy_vs_true",
    "show_source",
    "show_table",
]

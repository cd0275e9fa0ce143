"""What a search leaves beside its best run: every trial as a table (trials.csv), the study report (study.html:
the best trial against the defaults, the optimisation history, each trial's evaluations with the pruned ones,
the settings' importances) and the summary (search.json, also `stellartune.tune`'s return value)."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..atomic import atomic_file
from ..evaluation.sections import Bars, Lines, Section, Table
from ..reports.page import render_page
from .space import Space

STUDY_REPORT = "study.html"
TRIALS_TABLE = "trials.csv"
CURVES = 12  # trials drawn in the evaluations chart


def write_study_files(study: optuna.Study, folder: Path, metric: str, space: Space) -> dict:
    trials = study.get_trials(deepcopy=False)
    with atomic_file(folder / TRIALS_TABLE) as path:
        study.trials_dataframe().to_csv(path, index=False)
    summary = summarise(study, folder, metric)
    sections = [result_section(summary, metric), history_section(trials, metric, study.direction),
                curves_section(trials, metric), importance_section(study), trials_section(trials, metric, space)]
    subtitle = (f"{len(trials)} trials of study {study.study_name}: "
                + ", ".join(f"{n} {state.name.lower()}" for state in TrialState
                            if (n := sum(t.state == state for t in trials))))
    with atomic_file(folder / STUDY_REPORT) as path:
        path.write_text(render_page(f"Search: {folder.name}", subtitle, [s for s in sections if s]))
    return summary


def summarise(study: optuna.Study, folder: Path, metric: str) -> dict:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    defaults = next((t for t in complete if t.user_attrs.get("defaults")), None)
    best = study.best_trial if complete else None
    best_run = folder / "best"
    return {"metric": metric, "direction": study.direction.name.lower(),
            "best_trial": best.number if best else None, "best": best.value if best else None,
            "best_settings": best.params if best else None,
            "best_run": str(best_run) if best and best_run.resolve().name == f"trial-{best.number:04d}" else None,
            "defaults_trial": defaults.number if defaults else None, "defaults": defaults.value if defaults else None,
            "trials": {state.name.lower(): n for state in TrialState
                       if (n := len(study.get_trials(deepcopy=False, states=(state,))))},
            "trials_table": str(folder / TRIALS_TABLE), "study_report": str(folder / STUDY_REPORT)}


def result_section(summary: dict, metric: str) -> Section | None:
    if summary["best"] is None:
        return None
    rows = [["best", summary["best_trial"], summary["best"]]]
    if summary["defaults"] is not None:
        rows.append(["no-flag defaults", summary["defaults_trial"], summary["defaults"]])
    bought = (f"the search bought {summary['best'] - summary['defaults']:+.4f} {metric} over the no-flag defaults"
              if summary["defaults"] is not None else "no trial ran the no-flag defaults")
    return Section("Result", [Table("Best trial and defaults", ["", "trial", metric], rows)],
                   f"{bought}; the best trial's run: {summary['best_run'] or 'on the machine that ran it'}")


def history_section(trials: list[FrozenTrial], metric: str, direction) -> Section:
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pick = max if direction == optuna.study.StudyDirection.MAXIMIZE else min
    best, so_far = [], None
    for t in complete:
        so_far = t.value if so_far is None else pick(so_far, t.value)
        best.append(so_far)
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    series = {"finished trial": ([t.number for t in complete], [t.value for t in complete]),
              "best so far": ([t.number for t in complete], best)}
    if pruned:
        series["pruned (its last evaluation)"] = ([t.number for t in pruned],
                                                  [t.intermediate_values[max(t.intermediate_values)] for t in pruned])
    return Section("Optimisation history", [Lines("Score by trial", "trial", metric, series)],
                   f"Each finished trial's {metric} (its best evaluation, the checkpoint it kept), in the order "
                   "the trials started.")


def curves_section(trials: list[FrozenTrial], metric: str) -> Section:
    """Every trial's evaluations, or with many trials the CURVES most recent (a legend of 30 leaves no chart)."""
    evaluated = [t for t in trials if t.intermediate_values]
    shown = evaluated[-CURVES:]
    series = {f"trial {t.number}{' (pruned)' if t.state == TrialState.PRUNED else ''}":
              ([step / 100 for step in sorted(t.intermediate_values)],
               [t.intermediate_values[step] for step in sorted(t.intermediate_values)]) for t in shown}
    return Section("Evaluations and pruning", [Lines("Evaluations of each trial", "epochs", metric, series)],
                   f"The {metric} of every evaluation of {'every' if shown == evaluated else f'the last {len(shown)}'} "
                   "trial(s); a pruned trial's line ends where it fell below the median of the trials before it at "
                   "that epoch.")


def importance_section(study: optuna.Study) -> Section:
    try:
        importances = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (RuntimeError, ValueError) as e:  # fewer than two finished trials, or nothing varied
        return Section("Settings' importance", [], f"not measured: {e}")
    return Section("Settings' importance", [Bars("Importance (fANOVA)", list(importances),
                                                 {"importance": list(importances.values())}, "share")],
                   "How much of the score's variation across finished trials each setting explains (optuna's "
                   "fANOVA evaluator).")


def trials_section(trials: list[FrozenTrial], metric: str, space: Space) -> Section:
    names = list(space.distributions)
    rows = [[t.number, t.state.name.lower(), t.value,
             round((t.datetime_complete - t.datetime_start).total_seconds(), 1)
             if t.datetime_complete and t.datetime_start else None,
             "defaults" if t.user_attrs.get("defaults") else ""] + [t.params.get(name) for name in names]
            for t in trials]
    return Section("Trials", [Table("Every trial", ["trial", "state", metric, "seconds", ""] + names, rows,
                                    "also in trials.csv")])

"""`stellartune tune`: a hyperparameter search with Optuna that keeps the best trial's run.

Read top to bottom: the search folder checked, the data read and tokenized once, the space printed, the study
opened in its database (SQLite in the folder by default), the no-flag defaults enqueued as the first trial, then
trials until the study holds `--trials` finished ones (every process working on it counts). Each trial is a
whole `train` run into its own folder, scored by its best evaluation (the checkpoint it keeps); Optuna's median
pruner stops one whose evaluations fall below the median of the trials before it at the same epoch. A trial's
folder is removed once it is not the best, so the search leaves one run, `best/`, beside `trials.csv`,
`study.html` and `search.json`.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import json
import logging
import os
import shutil
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from ..atomic import MARKER, mark_ours, ours, refuse_foreign
from ..config import TrainConfig
from ..errors import StellarError
from ..models.loading import own_dropout
from ..training.lifecycle import start_run
from ..training.recipe import PreparedData, build_model, prepare_data, train_prepared
from ..training.run_lock import run_lock
from .settings import TuneSettings
from .space import Space, auto_space, read_space_file, with_entries
from .study_report import write_study_files

logger = logging.getLogger("stellartune")
STUDY_DB = "study.db"
BEST = "best"
# a trial of a process on another machine that sent no heartbeat for GRACE_SECONDS is dead (optuna fails it
# and runs its settings again); one of this machine is dead when its process is gone
HEARTBEAT_SECONDS, GRACE_SECONDS = 10, 60
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class Search:
    """One process's part of a search: what every trial shares."""

    settings: TuneSettings
    prepared: PreparedData  # its config: the user's settings settled on the data (trials replace the searched ones)
    space: Space
    study: optuna.Study
    folder: Path
    started: float

    @property
    def metric(self) -> str:
        return watched_metric(self.prepared)


def watched_metric(prepared: PreparedData) -> str:
    """The metric that scores a trial and chooses its checkpoint (--metric, as in train)."""
    return prepared.task.primary_metric if prepared.config.metric == "auto" else prepared.config.metric


def tune(config: TrainConfig, settings: TuneSettings) -> dict:
    """Search, then the summary (search.json): the best trial, its run folder, its score and the defaults'."""
    folder, say = Path(config.output), logger.info
    check_search_folder(folder, config)
    entries = read_space_file(settings.space) if settings.space else {}  # a mistake in it stops before any work
    prepared = prepare_data(config, say)
    space = search_space(prepared, entries, say)
    folder.mkdir(parents=True, exist_ok=True)
    mark_ours(folder)
    with run_lock(folder, wait=True):  # processes starting together: one creates the study, one queues the defaults
        search = Search(settings, prepared, space, open_study(folder, settings, prepared), folder, time.time())
        if search.space.centre_inside():
            search.study.enqueue_trial(search.space.centre, user_attrs={"defaults": True}, skip_if_exists=True)
        else:
            say("the no-flag defaults lie outside --space: no trial runs them, so no comparison with them at the end")
    reap_dead_trials(search)
    if finished(search.study) < settings.trials:
        search.study.optimize(lambda trial: run_trial(search, trial), timeout=settings.timeout,
                              callbacks=[lambda study, trial: after_trial(search, trial)], gc_after_trial=True)
    return finish(search, say)


def check_search_folder(folder: Path, config: TrainConfig) -> None:
    """A search folder holds one study: continuing it (or joining it from another process) takes --resume.
    Several GPUs search as several processes on one study (Optuna's distributed mode), not as one torchrun job
    whose ranks would have to agree on every trial and pruning."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise StellarError("tune runs as one process, not under torchrun: for several GPUs start one tune per GPU "
                           "(CUDA_VISIBLE_DEVICES=N stellartune tune ... --resume), all on one --output or --storage")
    if (folder / STUDY_DB).exists() and not config.resume:
        raise StellarError(f"{folder}: holds a search ({STUDY_DB}); add --resume to continue it (or to add a "
                           "process to it), or choose another --output")
    if not ours(folder) and not config.overwrite:
        refuse_foreign(folder)


def search_space(prepared: PreparedData, entries: dict, say) -> Space:
    """The space around the defaults auto would pick for this model and data (the model is built once to count
    its parameters), with --space's entries over it; printed."""
    model = build_model(prepared.task, prepared.model_path, prepared.tokenizer, prepared.config, say)
    parameters = sum(p.numel() for p in model.parameters())
    del model
    space = with_entries(auto_space(prepared.config, prepared.task, parameters, len(prepared.train_set),
                                    own_dropout(prepared.model_path, prepared.config.trust_remote_code)), entries)
    if not space.distributions:
        raise StellarError("nothing left to search: every setting of the space is fixed (by flags or --space)")
    say(f"search space (the no-flag defaults' neighbourhood{', with --space' if entries else ''}): {space.describe()}")
    return space


def open_study(folder: Path, settings: TuneSettings, prepared: PreparedData) -> optuna.Study:
    """The study in its database, created or joined: TPE samples, the median pruner stops poor trials."""
    url = settings.storage or f"sqlite:///{(folder / STUDY_DB).resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # each trial's line is ours
    with warnings.catch_warnings():  # the heartbeat and its retry are "experimental" since optuna 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            url, engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
            heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))
    metric = watched_metric(prepared)
    return optuna.create_study(
        storage=storage, study_name=settings.study_name or folder.resolve().name, load_if_exists=True,
        direction="minimize" if metric in prepared.task.lower_is_better else "maximize",
        sampler=optuna.samplers.TPESampler(seed=prepared.config.seed),
        # not successive halving: while fewer than 3 trials reach a rung it prunes any trial that does not lead it,
        # so a dozen trials end mostly at their first epoch; not Hyperband: its brackets split a dozen trials into
        # groups too small to compare
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2))


def run_trial(search: Search, trial: optuna.Trial) -> float:
    """One `train` run with the trial's settings into its own folder; its score is the kept (best) checkpoint's."""
    trial.set_user_attr("process", f"{socket.gethostname()}:{os.getpid()}")
    settings = search.space.suggest(trial)
    config = dataclasses.replace(search.prepared.config, **settings, output=str(search.folder / trial_folder(trial.number)),
                                 resume=False, overwrite=False)
    logger.info(f"trial {trial.number}: {', '.join(f'{k} {v:.3g}' if isinstance(v, float) else f'{k} {v}' for k, v in settings.items())}")
    accelerator, say = start_run(config)
    prepared = dataclasses.replace(search.prepared, task=copy.deepcopy(search.prepared.task))

    def watch(epochs: float, value: float) -> None:
        trial.report(value, step=round(epochs * 100))  # hundredths of an epoch: trials of any batch size line up
        if trial.should_prune():
            say(f"trial {trial.number} pruned after {epochs:g} epochs: {search.metric} {value:.4f} is below the "
                "median of the trials before it there")
            raise optuna.TrialPruned()

    model = train_prepared(prepared, config, accelerator, say, watch)
    value = model.metrics[search.metric]
    del model, accelerator, prepared
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if (megabytes := resident_megabytes()) is not None:  # in trials.csv: a long search must not grow
        trial.set_user_attr("resident_mb", round(megabytes))
    return value


def resident_megabytes() -> float | None:
    """This process's resident memory now (Linux's /proc; None elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def trial_folder(number: int) -> str:
    return f"trial-{number:04d}"


def finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def after_trial(search: Search, trial: optuna.trial.FrozenTrial) -> None:
    """Each trial's line with the best so far and what is left; the folders of trials that are not the best
    removed; the study stopped once it holds --trials (those under way count), or when another trial would
    likely end past --timeout."""
    study, settings = search.study, search.settings
    reap_dead_trials(search)
    remove_beaten_trials(search)
    done = study.get_trials(deepcopy=False, states=FINISHED)
    running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    seconds = trial_seconds(study)
    best = best_trial(study)
    logger.info(f"trial {trial.number} {trial.state.name.lower()}"
                + (f": {search.metric} {trial.value:.4f}" if trial.value is not None else "")
                + (f"; best so far trial {best.number}, {best.value:.4f}" if best else "")
                + f"; {len(done)} of {settings.trials} trials done" + (f", {running} under way" if running else "")
                + (f"; about {seconds:.0f} s a trial" if seconds else ""))
    if len(done) + running >= settings.trials:
        study.stop()
    elif settings.timeout and seconds and time.time() - search.started + seconds > settings.timeout:
        logger.info(f"stopping: another trial (about {seconds:.0f} s) would likely end past --timeout {settings.timeout:g}")
        study.stop()


def trial_seconds(study: optuna.Study) -> float | None:
    """The mean wall time of the finished trials (pruned ones included), for the budget."""
    times = [(t.datetime_complete - t.datetime_start).total_seconds()
             for t in study.get_trials(deepcopy=False, states=FINISHED) if t.datetime_start and t.datetime_complete]
    return sum(times) / len(times) if times else None


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    return study.best_trial if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) else None


def reap_dead_trials(search: Search) -> None:
    """A trial left running by a process of this machine that is gone (killed): failed, and its settings queued to
    run again (optuna's heartbeat does the same for other machines' after GRACE_SECONDS)."""
    host = socket.gethostname()
    for trial in search.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        where, _, pid = str(trial.user_attrs.get("process", "")).partition(":")
        if where == host and pid and not process_alive(int(pid)):
            search.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            search.study.enqueue_trial(trial.params, user_attrs={k: v for k, v in trial.user_attrs.items()
                                                                 if k != "process"})
            logger.info(f"trial {trial.number} was left unfinished by a process that ended (pid {pid}); its "
                        "settings run again")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_beaten_trials(search: Search) -> None:
    """The run folders of this machine's finished trials that are not the best, removed (stellartune wrote them);
    the best is linked as best/."""
    best = best_trial(search.study)
    for trial in search.study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.FAIL)):
        path = search.folder / trial_folder(trial.number)
        if (best is None or trial.number != best.number) and (path / MARKER).exists():
            remove_run(path)
    link = search.folder / BEST
    if best is not None and (search.folder / trial_folder(best.number)).is_dir() and (
            link.is_symlink() or not link.exists()):  # a file or folder of the user's named best stays
        temporary = search.folder / f".{BEST}.{os.getpid()}"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(trial_folder(best.number), target_is_directory=True)
        os.replace(temporary, link)  # a reader never finds best/ missing


def remove_run(path: Path) -> None:
    """A trial's run folder, which stellartune wrote (marked): renamed out of sight first, so a search killed
    meanwhile never leaves half of one under its name."""
    doomed = path.with_name(f".removed-{path.name}.{os.getpid()}")
    try:
        os.replace(path, doomed)
    except FileNotFoundError:  # another process of the search removed it first
        return
    shutil.rmtree(doomed, ignore_errors=True)


def finish(search: Search, say) -> dict:
    """The trials table, the study report and the summary, with what the search bought over the defaults."""
    remove_beaten_trials(search)
    summary = write_study_files(search.study, search.folder, search.metric, search.space)
    best = best_trial(search.study)
    if best is None:
        say(f"no trial finished; the trials: {search.folder / 'trials.csv'}")
        return summary
    defaults = summary.get("defaults")
    say(f"best: trial {best.number}, {search.metric} {best.value:.4f}"
        + (f", against {defaults:.4f} with the no-flag defaults (trial {summary['defaults_trial']}): "
           f"{best.value - defaults:+.4f}" if defaults is not None else "")
        + f"; its run: {summary['best_run'] or '(on the machine that ran it)'}; study report: "
        + str(search.folder / "study.html"))
    (search.folder / "search.json").write_text(json.dumps(summary, indent=2))
    return summary

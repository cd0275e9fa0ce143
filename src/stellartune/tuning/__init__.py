"""`stellartune tune`: a hyperparameter search over `train` runs (Optuna), keeping the best run
(`search.py`); its settings (`settings.py`), space (`space.py`) and study report (`study_report.py`)."""

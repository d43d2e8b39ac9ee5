"""One search from config to journal: setup, run folder, evaluator, journal, runner."""

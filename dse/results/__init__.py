"""A run folder's files: tables and summary from the journal, reading a run back, held-out checks, pick."""

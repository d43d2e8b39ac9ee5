"""Several runs of one problem side by side."""

"""Plots and the HTML report: data built by one function, drawn by another."""

"""Prompt files users edit, and the loader that checks their variables."""

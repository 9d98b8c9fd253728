"""The Feast registry and online store of one project folder: safe apply, location checks."""

"""Thin DVC stage entry points: parse args, call the featureops library."""

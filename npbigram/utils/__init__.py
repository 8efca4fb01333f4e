"""Small utilities: argument checks, safe files, memory limits, progress, stopping."""

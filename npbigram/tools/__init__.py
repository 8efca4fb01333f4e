"""The learning tools: gradient checks, explanations, the counting optimum, plots, the lecture."""

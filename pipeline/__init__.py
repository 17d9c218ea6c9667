"""leadscore: predictive lead scoring with reasons a sales rep can read."""

__version__ = "0.1.0"

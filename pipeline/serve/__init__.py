"""`leadscore serve`: the lead board as a small web app for a sales team, over the latest scores, the
score history and the reps' feedback (pipeline.feedback)."""

"""One module per DVC stage, each a thin ``run(settings)``: read the stage's inputs, call the cores
with the params it names in dvc.yaml, write its outputs. Only the command line imports them."""

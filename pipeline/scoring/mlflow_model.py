"""The code of leadscore's MLflow model (an MLflow "model from code": this file is kept with the
model and run when it is loaded, instead of a pickle). See :mod:`pipeline.scoring.pyfunc`."""

from mlflow.models import set_model

from pipeline.scoring.pyfunc import LeadscorePyfunc

set_model(LeadscorePyfunc())

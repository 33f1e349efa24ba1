"""What users run with a trained model: evaluation (mlip-eval); relaxation and MD arrive with issue 5."""

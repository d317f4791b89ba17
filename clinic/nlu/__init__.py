"""Custom components of the Rasa NLU pipeline."""

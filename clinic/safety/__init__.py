"""Safety nets that back the classifier."""

"""The clinic's Rasa runtime: what changes how Rasa runs (its patches: ``clinic.rasa_runtime.patches``)."""

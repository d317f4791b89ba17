"""Custom actions, one module per concern; rasa-sdk imports every submodule."""

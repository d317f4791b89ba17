"""The clinic assistant's own code: settings, safety net, storage and the web app."""

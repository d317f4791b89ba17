"""The clinic assistant's own code: settings, safety net, storage and the web app.

Every process of the assistant imports this package first (Rasa through ``clinic.rasa_runtime.rasa_launch``,
the action server through ``clinic.rasa_runtime.action_launch``, the web app, the console, the notifier, the
scripts), so the file mode mask is set here: what any of them creates (the SQLite files and
their WAL and SHM files, keys, backups, the spool, logs) is readable by its owner only (0600,
folders 0700). ``clinic.settings.secure_var_dir`` puts right what an older version left open.
"""

import os

os.umask(0o077)

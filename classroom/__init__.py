"""The course for a class on one machine: a JupyterHub with students as Linux users.

``python -m classroom up`` (``make classroom``) builds it under one folder (default
``/srv/cnn-course``) and starts the hub; ``python -m classroom down`` (``make classroom-clean``)
stops it and removes the accounts and the folder. Run both as root.

Modules: ``layout`` (where everything lives, the state file), ``accounts`` (roster, Linux
accounts, demo passwords), ``install`` (the shared Python, the course environment, the
student configuration, the grader's course folder, the proxy), ``hub`` (start, wait, stop).
The hub itself reads ``jupyterhub_config.py`` and uses ``roster_authenticator.py``.
"""

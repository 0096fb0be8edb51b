"""JupyterHub configuration of the classroom (``python -m classroom up`` copies this file into
``<prefix>/hub/`` and starts ``jupyterhub -f`` on it, as root).

What it sets up (the state file ``classroom.json`` beside it gives ports, paths and people):

* **People** log in with the demo authenticator (``roster_authenticator.py``: the roster's
  names, the passwords ``up`` printed). Only the roster's people may log in.
* **Each person's server** runs as their own Linux account (LocalProcessSpawner, hence root),
  from the shared course environment, in their home (mode 0700), JupyterLab by default.
  The environment's ``etc/jupyter`` gives them the course id and the exchange, and leaves out
  nbgrader's instructor tools (Formgrader, Create Assignment, Course List).
* **The Formgrader** is a hub service named like the course, run by the grader account in the
  course folder (so it reads the course's ``nbgrader_config.py``: whatever grader that file
  configures runs behind the Autograde button), reached at ``/services/cnn-course/``. Only the
  ``formgrade-cnn-course`` group (the roster's instructors) may open it. The hub does not
  start it (see below): ``python -m classroom up`` does, with the settings of
  ``classroom/hub.py:formgrader_env``.

Switching to a university's login (README, "Running the course for a class"): set
``"authenticator"`` in the state file (``up --authenticator``) to ``pam`` (the same Linux
accounts, their system passwords) or to an authenticator class, e.g.
``oauthenticator.generic.LocalGenericOAuthenticator`` (single sign-on) or
``ltiauthenticator.lti13.authenticator.LTI13Authenticator`` (the learning-management system),
with that package installed into the environment and its settings added below.
"""

import json
import os
import sys

c = get_config()  # noqa: F821 (JupyterHub injects get_config)

HERE = os.path.dirname(os.path.abspath(__file__))  # noqa: F821
sys.path.insert(0, HERE)  # roster_authenticator.py, passwords.py
with open(os.path.join(HERE, "classroom.json"), encoding="utf-8") as _fh:
    state = json.load(_fh)

prefix = state["prefix"]
env_bin = os.path.join(prefix, "env", "bin")
service = state["service"]
instructors = sorted(p["username"] for p in state["people"] if p["role"] == "instructor")
everyone = sorted(p["username"] for p in state["people"])

# -- the hub, its proxy and its files --------------------------------------------------------
c.JupyterHub.ip = state.get("ip", "127.0.0.1")
c.JupyterHub.port = state["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = state["hub_port"]
c.JupyterHub.db_url = "sqlite:///" + os.path.join(HERE, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(HERE, "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.command = [
    os.path.join(prefix, "proxy", "node_modules", ".bin", "configurable-http-proxy")
]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{state['proxy_api_port']}"
c.ConfigurableHTTPProxy.pid_file = os.path.join(HERE, "jupyterhub-proxy.pid")

# -- who may log in ----------------------------------------------------------------------------
if state.get("authenticator", "roster") == "roster":
    c.JupyterHub.authenticator_class = "roster_authenticator.RosterAuthenticator"
    c.RosterAuthenticator.password_file = os.path.join(HERE, "passwords.json")
else:
    c.JupyterHub.authenticator_class = state["authenticator"]
c.Authenticator.allowed_users = set(everyone)

# -- each person's own server ----------------------------------------------------------------
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [os.path.join(env_bin, "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.environment = dict(state.get("environment", {}))
c.Spawner.start_timeout = 240  # the first start of a big environment on a busy machine
c.Spawner.http_timeout = 240

# -- the Formgrader: a hub service run by the grader account in the course folder -----------
# External to the hub: python -m classroom starts it (classroom/hub.py, as systemd would on a
# server). The hub waits only about 10 s for a service it starts itself and exits if it is not
# up by then; this Jupyter server needs 12-20 s on a busy 2-core machine.
c.JupyterHub.services = [
    {
        "name": service,
        "url": f"http://127.0.0.1:{state['service_port']}",
        "api_token": state["service_token"],
        "oauth_no_confirm": True,
    }
]
c.JupyterHub.load_groups = {state["formgrade_group"]: {"users": instructors}}
c.JupyterHub.load_roles = [
    {
        "name": state["formgrade_group"],
        "groups": [state["formgrade_group"]],
        "scopes": [
            f"access:services!service={service}",
            "list:services",
            f"read:services!service={service}",
        ],
    },
]

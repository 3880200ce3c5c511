"""The facade ``Health``, built from its parts.

``facade`` holds ``Health`` itself (its options and state), ``registering`` the
checks and endpoints it registers, ``serving`` this process's refresher and probe
port, ``parts`` what these share. The folder may import every internal folder
(``process``, ``checks``, ``engine``, ``formats``, ``model``, ``web``, ``instance``,
``config``); only the public faces above import it."""

from health_middleware.engine.callbacks import Listener
from health_middleware.engine.heartbeat import Heartbeat
from health_middleware.health.facade import Health
from health_middleware.model.check import CheckOptions

__all__ = ["CheckOptions", "Health", "Heartbeat", "Listener"]

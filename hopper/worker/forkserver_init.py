"""Imported first in the fork server that starts worker processes.

SIGTERM and SIGINT sent to the whole process group (Ctrl-C, ``timeout``,
systemd's default stop) must not kill workers mid-task: the supervisor owns
shutdown and tells each worker when to stop. SIGHUP (a closed terminal) is the
supervisor's too: it reloads the settings. Workers inherit these settings.
"""
import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)

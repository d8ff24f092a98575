"""A developer's machine and `make run`: debug on, console email, embedded stores allowed."""

from .base import *

DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
INTERNAL_IPS = ["127.0.0.1"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

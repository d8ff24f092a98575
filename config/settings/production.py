"""Production: every store is external, secrets come from the environment, HTTPS only."""

import os

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("TANDEM_EMBEDDED_STORES", "0")

from .base import *

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
if SECRET_KEY.startswith("dev-insecure") or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be a random value of 50+ characters")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
ENCRYPTION_KEYS = env.list("TANDEM_ENCRYPTION_KEYS")
if not ENCRYPTION_KEYS:
    raise ImproperlyConfigured("TANDEM_ENCRYPTION_KEYS must list at least one Fernet key")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SECURE = True
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "var" / "staticfiles"))

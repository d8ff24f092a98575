"""The test suite: real stores (URLs from the environment, else embedded), fast hashing."""

import os

from .base import *

DEBUG = False
# pytest-xdist workers share one Redis; a prefix per worker keeps caches and channels apart.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
# Several suites may share one PostgreSQL (developers, CI jobs): a suffix keeps their test
# databases apart. pytest-django adds the xdist worker name on top of this.
_SUFFIX = os.environ.get("TANDEM_TEST_DB_SUFFIX", "")
if _SUFFIX:
    DATABASES["default"]["TEST"] = {"NAME": f"test_tandem_{_SUFFIX}"}
    _WORKER = f"{_SUFFIX}-{_WORKER}"
CACHES["default"]["KEY_PREFIX"] = f"test-{_WORKER}"
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"test-{_WORKER}"
# Argon2 stays the configured hasher in production settings; tests that check it use it
# explicitly. MD5 here only keeps thousands of test users from costing minutes.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
LOG_FORMAT = "plain"
LOGGING["handlers"]["console"]["formatter"] = "plain"
LOGGING["root"]["level"] = "WARNING"
AXES_ENABLED = True
CLICKHOUSE_DATABASE = "tandem_test_" + "".join(c if c.isalnum() else "_" for c in _WORKER)
# Transactional tests empty tables with TRUNCATE, which the append-only audit log refuses unless
# the connection says so (see accounts/migrations/0002).
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"]["options"] = "-c tandem.allow_truncate=on"
# Connections opened by async consumers' worker threads close after use, so the test database
# can be dropped at the end of the run.
DATABASES["default"]["CONN_MAX_AGE"] = 0
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Browser journeys run against an uncollected tree: WhiteNoise serves straight from the finders.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Suites make hundreds of token and key requests a minute as one free-plan customer; the plan's
# API rate is switched on by the tests of it (billing/tests/test_api.py).
BILLING_PLAN_RATE_ENFORCED = False

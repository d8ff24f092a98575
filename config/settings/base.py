"""Settings shared by every environment. Values come from the environment (django-environ).

Store URLs: DATABASE_URL, REDIS_URL and CLICKHOUSE_URL point at external servers; where one is
unset (and embedded stores are allowed) config.embedded starts a real engine under var/.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config import embedded

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env(
    "DJANGO_SECRET_KEY", default="dev-insecure-key-change-me-0123456789abcdefghijklmnop"
)
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# The public origin of the portal: the domain and URI a wallet sign-in message must carry.
SITE_URL = env("TANDEM_SITE_URL", default="http://localhost:8000")

# --------------------------------------------------------------------------- stores

EMBEDDED_STORES_ALLOWED = env.bool("TANDEM_EMBEDDED_STORES", default=True)


def _store_url(store: str) -> str:
    try:
        return embedded.resolve_store_url(store, allow_embedded=EMBEDDED_STORES_ALLOWED)
    except embedded.EmbeddedStoreError as exc:
        raise ImproperlyConfigured(str(exc)) from exc


DATABASE_URL = _store_url("postgres")
REDIS_URL = _store_url("redis")
CLICKHOUSE_URL = _store_url("clickhouse")
CLICKHOUSE_CLUSTER = env("CLICKHOUSE_CLUSTER", default="")

DATABASES: dict[str, dict[str, Any]] = {"default": dict(env.db_url_config(DATABASE_URL))}
DATABASES["default"].update(
    {
        "ATOMIC_REQUESTS": False,
        "CONN_MAX_AGE": env.int("DATABASE_CONN_MAX_AGE", default=60),
        "CONN_HEALTH_CHECKS": True,
    }
)
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    embedded.validate_url("DATABASE_REPLICA_URL", DATABASE_REPLICA_URL, ("postgres", "postgresql"))
    DATABASES["replica"] = {
        **env.db_url_config(DATABASE_REPLICA_URL),
        "TEST": {"MIRROR": "default"},
    }
    DATABASE_ROUTERS = ["config.db_router.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _redis_db(url: str, db: int) -> str:
    """The same Redis server, another logical database (cache, channels, broker kept apart)."""
    base, _, _ = url.rpartition("/") if url.count("/") > 2 else (url, "", "")
    return f"{base}/{db}"


CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": _redis_db(REDIS_URL, 1),
        "KEY_PREFIX": env("TANDEM_CACHE_PREFIX", default="tandem"),
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        "TIMEOUT": 300,
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --------------------------------------------------------------------------- apps

INSTALLED_APPS = [
    "daphne",
    # django.contrib.admin, with the TOTP-enforcing site of accounts.admin_site as admin.site.
    "accounts.apps.TandemAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    # third party
    "channels",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "django_htmx",
    # Tandem
    "config",
    "accounts",
    "trading",
    "copytrade",
    "billing",
    "analytics",
]

MIDDLEWARE = [
    "config.observability.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Ends portal sessions the user signed out elsewhere; notes when each was last used.
    "accounts.middleware.AuthSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Axes last: it inspects the outcome of authentication for lockout.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.context_processors.portal",
            ],
        },
    }
]

# --------------------------------------------------------------------------- auth

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Axes first so a locked-out client is refused before a password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "home"

AXES_FAILURE_LIMIT = env.int("TANDEM_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_SENSITIVE_PARAMETERS = ["password", "signature", "otp_token"]

# The lockout answer: problem+json with Retry-After on /api/, a page in the portal and admin.
AXES_LOCKOUT_CALLABLE = "accounts.views.lockout_response"
# Every sign-in path calls authenticate(username=...): without this axes would look for
# "email" (USERNAME_FIELD), find nothing, and count every failure against no one.
AXES_USERNAME_FORM_FIELD = "username"
# API keys in websocket handshakes (config/ws_auth.py) are resolved by the accounts app.
TANDEM_WS_API_KEY_RESOLVER = "accounts.selectors.api_key_for_websocket"
TANDEM_WS_JWT_RESOLVER = "accounts.selectors.jwt_user_for_websocket"

OTP_TOTP_ISSUER = "Tandem"
PASSWORD_RESET_TIMEOUT = 3600

# --------------------------------------------------------------------------- i18n, static

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = embedded.var_dir() / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = embedded.var_dir() / "media"

EMAIL_BACKEND = env(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env("DJANGO_DEFAULT_FROM_EMAIL", default="Tandem <no-reply@tandem.local>")

# --------------------------------------------------------------------------- API

REST_FRAMEWORK = {
    # JWT first: its WWW-Authenticate header makes an anonymous request a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.SessionJWTAuthentication",
        "accounts.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # ScopePermission: an API key needs the scope a view declares (accounts/api/permissions.py).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.api.permissions.ScopePermission",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.NamespaceVersioning",
    "DEFAULT_VERSION": "v1",
    "ALLOWED_VERSIONS": ["v1"],
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.api.throttling.AnonRateThrottle",
        "accounts.api.throttling.UserOrApiKeyRateThrottle",
        # The customer's plan's API rate (seed 003), for API keys and tokens.
        "billing.api.throttling.PlanRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("TANDEM_THROTTLE_ANON", default="60/min"),
        "user": env("TANDEM_THROTTLE_USER", default="600/min"),
        # Each API key has its own budget, apart from its owner's sessions.
        "api_key": env("TANDEM_THROTTLE_API_KEY", default="600/min"),
        # Sign-in endpoints, per client IP, on top of django-axes' per-account lockout.
        "auth": env("TANDEM_THROTTLE_AUTH", default="30/min"),
    },
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "config.api.CreatedCursorPagination",
    "PAGE_SIZE": 50,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "COERCE_DECIMAL_TO_STRING": True,
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=30),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "SIGNING_KEY": env("TANDEM_JWT_SIGNING_KEY", default=SECRET_KEY),
    "AUTH_HEADER_TYPES": ("Bearer",),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Tandem API",
    # The websocket protocol is part of the API contract for mobile clients, so the docs page
    # carries it (docs/websocket.md is the same text).
    "DESCRIPTION": (
        "Copy trading and trader analytics for perpetual futures.\n\n"
        + (BASE_DIR / "docs" / "websocket.md")
        .read_text()
        .replace("# Live updates", "## Live updates", 1)
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.add_problem_responses",
    ],
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Fields that share a name but not their choices get explicit enum names; otherwise
    # drf-spectacular invents hashed ones and `check --deploy` warns (drf_spectacular.W001).
    "ENUM_NAME_OVERRIDES": {
        "SignInModeEnum": ["session", "jwt"],
        "AgentWalletCreateModeEnum": ["generate", "register"],
        "OrderSideEnum": "trading.models.OrderSide",
        "PositionSideEnum": "trading.models.PositionSide",
        "StrategyModeEnum": "copytrade.models.StrategyMode",
    },
}

# --------------------------------------------------------------------------- channels, celery

CHANNEL_LAYERS: dict[str, Any] = {
    "default": {
        # The pub/sub layer: a group_send is one PUBLISH, received once per server process and
        # fanned out to that process's sockets in memory. The list-based RedisChannelLayer
        # pushes one message per subscriber and each process pops them one by one, which at
        # 1,000 sockets on a market stream costs thousands of round trips per tick. What the
        # pub/sub layer does not keep (a message published while a process is reconnecting) the
        # streams' own sequence numbers and Redis backlog give back to clients on resume.
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            # redis-py 8 defaults socket_timeout to 5 s, which breaks channels_redis's blocking
            # reads on idle connections (django/channels_redis#422); reads must outlast them.
            "hosts": [{"address": _redis_db(REDIS_URL, 2), "socket_timeout": 30}],
            "prefix": env("TANDEM_CHANNELS_PREFIX", default="tandem"),
        },
    }
}

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=_redis_db(REDIS_URL, 3))
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
# acks_late + reject_on_worker_lost: a task whose worker dies is delivered again; every task is
# idempotent, so a redelivery is harmless while a lost task would not be.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"visibility_timeout": 3600}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "accounts-siwe-nonces-purge": {"task": "accounts.siwe_nonces_purge", "schedule": 3600.0},
    # trading: the embedded market feed, marks, fills from the venues, the outbox safety net and
    # reconciliation (trading/tasks.py).
    "trading-market-simulator-step": {
        "task": "trading.tasks.market_simulator_step",
        "schedule": 2.0,
    },
    "trading-position-mark-all": {"task": "trading.tasks.position_mark_all_task", "schedule": 5.0},
    "trading-fills-sync-all": {"task": "trading.tasks.fills_sync_all_task", "schedule": 5.0},
    "trading-outbox-sweep": {"task": "trading.tasks.outbox_sweep_task", "schedule": 10.0},
    "trading-reconcile-all": {"task": "trading.tasks.reconcile_all_task", "schedule": 60.0},
    # analytics: drain the ingestion buffers into ClickHouse (flush by time; producers also
    # ask for a drain past a size), KPI rollups, copy scores, the liquidation heatmap.
    "analytics-buffers-drain": {"task": "analytics.tasks.buffers_drain_task", "schedule": 1.0},
    "analytics-trader-kpis-refresh": {
        "task": "analytics.tasks.trader_kpis_refresh_task",
        "schedule": 300.0,
    },
    "analytics-trader-scores-publish": {
        "task": "analytics.tasks.trader_scores_publish_task",
        "schedule": 3600.0,
    },
    "analytics-liq-heatmap-build": {
        "task": "analytics.tasks.liq_heatmap_build_task",
        "schedule": 900.0,
    },
    # copytrade: leader fills (polling beyond the websockets, catch-up), leader account values,
    # follower equity, alignment and rebalancing, the ClickHouse exports' safety nets, the demo.
    "copytrade-traders-poll": {"task": "copytrade.tasks.traders_poll_task", "schedule": 10.0},
    "copytrade-traders-account-refresh": {
        "task": "copytrade.tasks.traders_account_refresh_task",
        "schedule": 300.0,
    },
    "copytrade-follower-equities-refresh": {
        "task": "copytrade.tasks.follower_equities_refresh_task",
        "schedule": 30.0,
    },
    "copytrade-strategies-align": {
        "task": "copytrade.tasks.strategies_align_task",
        "schedule": 60.0,
    },
    "copytrade-trader-events-export": {
        "task": "copytrade.tasks.trader_events_export_task",
        "schedule": 15.0,
    },
    "copytrade-copy-outcomes-record": {
        "task": "copytrade.tasks.copy_outcomes_record_task",
        "schedule": 10.0,
    },
    "copytrade-demo-traders-step": {
        "task": "copytrade.tasks.demo_traders_step_task",
        "schedule": 5.0,
    },
}
# billing: the fill-fee sweep behind the fill listener, daily equity marks then management and
# performance fees (after midnight UTC, in that order), subscription renewals and dunning,
# monthly statements. Every task is idempotent: a second run charges nothing.
CELERY_BEAT_SCHEDULE.update(
    {
        "billing-fill-fees-sweep": {
            "task": "billing.tasks.fill_fees_sweep_task",
            "schedule": 300.0,
        },
        "billing-equity-marks-take": {
            "task": "billing.tasks.equity_marks_take_task",
            "schedule": crontab(minute=5, hour=0),
        },
        "billing-management-fees-accrue": {
            "task": "billing.tasks.management_fees_accrue_task",
            "schedule": crontab(minute=20, hour=0),
        },
        "billing-performance-fees-accrue": {
            "task": "billing.tasks.performance_fees_accrue_task",
            "schedule": crontab(minute=30, hour=0),
        },
        "billing-subscriptions-renew": {
            "task": "billing.tasks.subscriptions_renew_task",
            "schedule": 900.0,
        },
        "billing-statements-close": {
            "task": "billing.tasks.statements_close_task",
            "schedule": crontab(minute=0, hour=2, day_of_month=1),
        },
    }
)
# Queues per workload, so one kind of work can never starve another: order execution is
# latency-critical and small; copy fan-out is bursty; ingestion is steady and heavy; billing is
# periodic and slow. `make run` consumes all five in one worker; production runs a worker pool per
# queue (Procfile, deploy/systemd, docs/production.md).
TANDEM_QUEUES = ("execution", "copy", "ingest", "billing", "default")
# A suffix on every queue name keeps one deployment's (or one test's) workers off another's
# queues on a shared broker.
TANDEM_QUEUE_SUFFIX = env("TANDEM_QUEUE_SUFFIX", default="")


def _queue(name: str) -> dict[str, str]:
    return {"queue": name + TANDEM_QUEUE_SUFFIX}


CELERY_TASK_DEFAULT_QUEUE = "default" + TANDEM_QUEUE_SUFFIX
# Priorities order tasks inside a queue (0 lowest, 9 highest). RabbitMQ needs x-max-priority on
# the queue; the Redis transport emulates it with one list per priority step.
CELERY_TASK_QUEUE_MAX_PRIORITY = 10
CELERY_TASK_DEFAULT_PRIORITY = 5
CELERY_TASK_QUEUES = [
    Queue(
        name + TANDEM_QUEUE_SUFFIX,
        routing_key=name + TANDEM_QUEUE_SUFFIX,
        queue_arguments={"x-max-priority": 10},
    )
    for name in TANDEM_QUEUES
]
CELERY_BROKER_TRANSPORT_OPTIONS.update(
    {"queue_order_strategy": "priority", "priority_steps": list(range(10))}
)
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = {
    "billing.tasks.*": _queue("billing"),
    "trading.tasks.market_simulator_step": _queue("ingest"),
    "trading.tasks.*": _queue("execution"),
    "analytics.tasks.buffers_drain_task": _queue("ingest"),
    "analytics.tasks.buffer_drain_task": _queue("ingest"),
    "analytics.tasks.*": _queue("default"),
    # Leader fills come in on ingest (polling, demo traders, exports); what the engine does with
    # them for followers (decisions, equities, alignment, outcomes) is the copy queue's work.
    "copytrade.tasks.trader_fills_poll_task": _queue("ingest"),
    "copytrade.tasks.traders_poll_task": _queue("ingest"),
    "copytrade.tasks.trader_events_export_task": _queue("ingest"),
    "copytrade.tasks.demo_traders_step_task": _queue("ingest"),
    "copytrade.tasks.*": _queue("copy"),
    "accounts.*": _queue("default"),
}
# Time limits: a stuck task must end rather than hold a worker slot forever. The soft limit
# raises inside the task (so it can clean up); the hard limit kills the child. Execution tasks
# call a venue with its own short timeouts, so anything past half a minute is stuck; billing's
# monthly statements are the slowest legitimate work.
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 150
CELERY_TASK_ANNOTATIONS: dict[str, dict[str, Any]] = {
    "trading.tasks.order_submit_task": {"priority": 9, "soft_time_limit": 30, "time_limit": 45},
    "trading.tasks.order_cancel_task": {"priority": 9, "soft_time_limit": 30, "time_limit": 45},
    "trading.tasks.orders_submit_bulk_task": {
        "priority": 8,
        "soft_time_limit": 60,
        "time_limit": 75,
    },
    "trading.tasks.outbox_sweep_task": {"priority": 3},
    "copytrade.tasks.decisions_announce_task": {"priority": 7},
    "billing.tasks.statements_close_task": {"soft_time_limit": 900, "time_limit": 960},
}

# --------------------------------------------------------------------------- ClickHouse

CLICKHOUSE_SETTINGS = {
    "max_execution_time": env.int("CLICKHOUSE_MAX_EXECUTION_TIME", default=30),
}

# --------------------------------------------------------------------------- security, logging

ENCRYPTION_KEYS = env.list(
    "TANDEM_ENCRYPTION_KEYS",
    # Dev/test only; production.py refuses to start without real keys.
    default=["2rWq0oXnW6l0QyYtqM0f1m0Y8c5Qm2w1m4Z1c7o3b9E="],
)
if not ENCRYPTION_KEYS:
    raise ImproperlyConfigured("TANDEM_ENCRYPTION_KEYS must list at least one Fernet key")

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
DATA_UPLOAD_MAX_MEMORY_SIZE = 1_048_576

LOG_LEVEL = env("TANDEM_LOG_LEVEL", default="INFO")
LOG_FORMAT = env("TANDEM_LOG_FORMAT", default="json")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.observability.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "config.observability.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
        },
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": "INFO"},
        "pgserver": {"level": "WARNING"},
        # One INFO line per process start is noise in `make run`'s combined output.
        "axes": {"level": "WARNING"},
    },
}

# --------------------------------------------------------------------------- product settings

TANDEM = {
    # The default venue for new agent wallets and orders in this deployment.
    "DEFAULT_VENUE": env("TANDEM_DEFAULT_VENUE", default="paper"),
    "HYPERLIQUID_API_URL": env("TANDEM_HYPERLIQUID_API_URL", default="https://api.hyperliquid.xyz"),
    "HYPERLIQUID_TESTNET": env.bool("TANDEM_HYPERLIQUID_TESTNET", default=False),
    "SIWE_CHAIN_IDS": env.list("TANDEM_SIWE_CHAIN_IDS", cast=int, default=[1, 42161]),
    "SIWE_NONCE_TTL_SECONDS": 300,
    # KYC level 1 may copy with at most this much equity under copy (USD); level 2 has no cap.
    "KYC_LEVEL1_MAX_EQUITY_USD": env("TANDEM_KYC1_MAX_EQUITY_USD", default="10000"),
    # trading (trading/stores.py documents each). Market data and the paper venue's own state
    # live in Redis databases 4 and 5, every key under REDIS_KEY_PREFIX.
    "REDIS_KEY_PREFIX": env("TANDEM_REDIS_KEY_PREFIX", default=""),
    "MARKET_DATA_REDIS_URL": env("TANDEM_MARKET_DATA_REDIS_URL", default=_redis_db(REDIS_URL, 4)),
    "PAPER_VENUE_REDIS_URL": env("TANDEM_PAPER_VENUE_REDIS_URL", default=_redis_db(REDIS_URL, 5)),
    "MARKET_DATA_VENUE": "paper",
    "MARKET_DATA_REPLAY_FILE": env("TANDEM_MARKET_DATA_REPLAY_FILE", default=""),
    "MARKET_SIMULATOR_SEED": env.int("TANDEM_MARKET_SIMULATOR_SEED", default=20240601),
    "ORDER_SUBMIT_LEASE_SECONDS": env.float("TANDEM_ORDER_SUBMIT_LEASE_SECONDS", default=60.0),
    "ORDER_SUBMIT_MAX_ATTEMPTS": env.int("TANDEM_ORDER_SUBMIT_MAX_ATTEMPTS", default=8),
    "OUTBOX_SWEEP_AFTER_SECONDS": env.float("TANDEM_OUTBOX_SWEEP_AFTER_SECONDS", default=30.0),
    "MARKET_ORDER_SLIPPAGE_BPS": 500,
    "RECONCILE_UNSENT_POLICY": env("TANDEM_RECONCILE_UNSENT_POLICY", default="resubmit"),
    "RECONCILE_GRACE_SECONDS": 120,
    "VENUE_TIMEOUT_SECONDS": env.float("TANDEM_VENUE_TIMEOUT_SECONDS", default=10.0),
    "CCXT_API_URLS": {},
    "PAPER_TAKER_FEE_BPS": "4.5",
    "PAPER_MAKER_FEE_BPS": "1.5",
    "PAPER_STARTING_BALANCE": env("TANDEM_PAPER_STARTING_BALANCE", default="100000"),
    "PAPER_LATENCY_MS": env.int("TANDEM_PAPER_LATENCY_MS", default=0),
    "EXECUTION_QUEUE": env("TANDEM_EXECUTION_QUEUE", default=""),
    # billing accrues builder and copy fees on every copied fill (billing/services/listeners.py).
    "FILL_LISTENERS": [
        "trading.live.fills_published",
        "billing.services.fill_listener",
        "copytrade.services.copy_fills_listener",
    ],
    # Every published batch of ticks is buffered for ClickHouse (analytics ingestion).
    "TICK_LISTENERS": ["analytics.services.ticks_listener", "trading.live.ticks_published"],
}

# Analytics (analytics/conf.py documents every key and its default).
ANALYTICS: dict[str, Any] = {
    "BUFFER_REDIS_URL": env("TANDEM_ANALYTICS_REDIS_URL", default=_redis_db(REDIS_URL, 6)),
    "TICK_FLUSH_ROWS": env.int("TANDEM_ANALYTICS_TICK_FLUSH_ROWS", default=5000),
    "DEFAULT_EQUITY_BASE_USD": env("TANDEM_ANALYTICS_DEFAULT_EQUITY_BASE_USD", default="10000"),
    "API_CACHE_SECONDS": env.int("TANDEM_ANALYTICS_API_CACHE_SECONDS", default=5),
}

# Billing (billing/conf.py documents every key and its default).
BILLING: dict[str, Any] = {
    "CURRENCY": env("TANDEM_BILLING_CURRENCY", default="USDC"),
    "PAYMENT_TERMS_HOURS": env.int("TANDEM_BILLING_PAYMENT_TERMS_HOURS", default=72),
}

"""Aula's Django settings, read from the environment (django-environ).

One module serves every way of running: `make run` (DEBUG, SQLite and an embedded Redis that the
launcher starts), the test suite (PostgreSQL and Redis on 127.0.0.1) and production (everything
from the environment, HTTPS on). docs/configuration.md lists every variable.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
# HTTPS on means secure cookies, HSTS and the redirect to https; production runs with it.
HTTPS = env.bool("HTTPS", default=not DEBUG)
VAR_DIR = Path(env("VAR_DIR", default=str(BASE_DIR / "var")))
# Datasets that need a download (cifar10, mnist, fashion_mnist): `manage.py download_datasets`.
DATA_DIR = Path(env("DATA_DIR", default=str(VAR_DIR / "datasets")))

SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-key-for-debug-runs-never-used-in-production-0123456789"

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "apps.core",
    "apps.accounts",
    "apps.tenants",
    "apps.courses",
    "apps.jobs",
    "apps.trained_models",
    "apps.datasets",
    "apps.quotas",
    "apps.audit",
    "apps.learning",
    "apps.serving",
    "apps.console",
    "apps.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.RequestBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.core.middleware.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "apps.tenants.middleware.TenantMiddleware",
]

ROOT_URLCONF = "config.urls"
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
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'aula.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default: web, worker and beat share one file, so writers queue instead of
    # failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif env.bool("DATABASE_POOL", default=True):
    # PostgreSQL: each process keeps a pool of open connections (psycopg_pool) instead of
    # opening one per request or task (about 9 ms each, twice on the way from submit to the
    # worker). The pool, not CONN_MAX_AGE, is how Django keeps connections under ASGI.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=30.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, Channels layer, Celery broker --------------------------------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "aula",
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py 8 reads with a 5 s socket timeout by default, the same as channels_redis's
        # blocking BZPOPMIN: a consumer idle for 5 s crashed. Keep the read timeout above it.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}], "prefix": "aula:asgi"},
    }
}

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_TASK_DEFAULT_QUEUE = "default"
# The worker pools that run training and grading (one Celery queue each, one job per GPU of a
# worker consuming it); "default" runs light tasks. A tenant's quota names the pools it may use;
# the first one is every tenant's until a platform administrator says otherwise.
WORKER_POOLS = env.list("WORKER_POOLS", default=["gpu"])
CELERY_TASK_QUEUES = (Queue("default"), *(Queue(pool) for pool in WORKER_POOLS))
CELERY_TASK_ROUTES = {"jobs.run_job": {"queue": WORKER_POOLS[0]}}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Above the longest job a quota allows, so an unacknowledged job is not redelivered mid-run.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# --- Jobs: leases, the reaper, dispatch --------------------------------------------------------
# A running job's lease is renewed every third of this; a worker silent for longer is lost.
JOB_LEASE_SECONDS = env.float("JOB_LEASE_SECONDS", default=30.0)
# After this many lost workers a job fails instead of being requeued again.
JOB_MAX_WORKERS_LOST = 3
JOB_REAPER_INTERVAL_SECONDS = env.float("JOB_REAPER_INTERVAL_SECONDS", default=10.0)
# A waiting job last written this long ago is released by the reaper's round (newer ones: by
# the round their own commit runs).
JOB_DISPATCH_GRACE_SECONDS = env.float("JOB_DISPATCH_GRACE_SECONDS", default=2.0)
# A published job still queued this long after is published again (its message may be lost).
JOB_REDISPATCH_AFTER_SECONDS = env.float("JOB_REDISPATCH_AFTER_SECONDS", default=600.0)
# Jobs a pool runs at once, e.g. "gpu=8,gpu-large=2"; a pool not named: one per live worker
# consuming its queue (from the heartbeats).
POOL_SLOTS = env.dict("POOL_SLOTS", cast={"value": int}, default={})
# Fair-share dispatch ranks tenants and learners by their device time over this past window.
FAIR_SHARE_USAGE_WINDOW_SECONDS = env.float("FAIR_SHARE_USAGE_WINDOW_SECONDS", default=3600.0)
# Publishing gives up fast when the broker is down: the job stays queued for the reaper.
JOB_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
# The quota a tenant gets until a platform administrator sets its own (apps/quotas).
DEFAULT_TENANT_QUOTA = {
    "period": "month",
    "gpu_seconds": env.int("DEFAULT_TENANT_GPU_SECONDS", default=100 * 3600),
    "max_running_jobs": 2,
    "max_queued_jobs": 100,
    "max_seconds_per_job": 3600,
    "storage_bytes": env.int("DEFAULT_TENANT_STORAGE_BYTES", default=5 * 2**30),
    "predictions_per_day": env.int("DEFAULT_TENANT_PREDICTIONS_PER_DAY", default=10_000),
}
# Code submissions without bubblewrap run with resource limits only (development machines).
SANDBOX_ALLOW_LIMITS_ONLY = env.bool("SANDBOX_ALLOW_LIMITS_ONLY", default=False)

CELERY_BEAT_SCHEDULE = {
    "credentials-purge": {
        "task": "apps.accounts.tasks.credentials_purge",
        "schedule": crontab(minute=17),
    },
    "reap-jobs": {
        "task": "jobs.reap_jobs",
        "schedule": JOB_REAPER_INTERVAL_SECONDS,
    },
    # Starts the new period of quotas whose period ended (admission also rolls its own).
    "quota-periods-roll": {
        "task": "apps.quotas.tasks.quota_periods_roll",
        "schedule": crontab(minute="*/10"),
    },
    # Deletes expired trained models, unreferenced artifacts and orphan files (docs/models.md).
    "artifacts-purge": {
        "task": "trained_models.artifacts_purge",
        "schedule": crontab(minute=29),
    },
    # Mastery's observations of grades withheld with nothing shown, once their due date passed.
    "withheld-grades-observe": {
        "task": "apps.learning.tasks.withheld_grades_observe",
        "schedule": crontab(minute="*/10"),
    },
    # Refits every tenant's knowledge-tracing parameters (teachers can also ask for a fit).
    "bkt-fit-all": {
        "task": "apps.learning.tasks.bkt_fit_all",
        "schedule": crontab(hour=3, minute=41),
    },
}
# --- Learning records, knowledge tracing and the tutor -------------------------------------
# The base of the IRIs that name Aula's activities and verbs in xAPI statements.
XAPI_IRI_BASE = env.str("XAPI_IRI_BASE", default="https://aula.example")
# An external learning record store (its xAPI endpoint, ending before /statements); statements
# are forwarded by a Celery task, retried, never from a request. Empty: not forwarded.
LRS_ENDPOINT = env.str("LRS_ENDPOINT", default="")
LRS_USERNAME = env.str("LRS_USERNAME", default="")
LRS_PASSWORD = env.str("LRS_PASSWORD", default="")
# A graded attempt counts as a correct answer for knowledge tracing from this fraction of the
# maximum score; a skill counts as mastered from MASTERY_THRESHOLD (the usual 0.95 of BKT).
LEARNING_PASS_FRACTION = 0.6
MASTERY_THRESHOLD = 0.95
# Keys (Fernet, urlsafe base64 of 32 bytes) that encrypt tenants' tutor endpoint keys; the first
# encrypts, all decrypt, so keys can be rotated. Empty: one derived from SECRET_KEY.
TUTOR_ENCRYPTION_KEYS = env.list("TUTOR_ENCRYPTION_KEYS", default=[])
# Questions a learner may ask the tutor per minute.
TUTOR_QUESTIONS_PER_MINUTE = env.int("TUTOR_QUESTIONS_PER_MINUTE", default=6)
TUTOR_ENDPOINT_TIMEOUT = env.float("TUTOR_ENDPOINT_TIMEOUT", default=60.0)
# Hosts (names or addresses, as written in the endpoint URL) a tenant's tutor endpoint may be on
# although they are, or resolve to, loopback, private, link-local or metadata addresses: set by
# a platform administrator for a model server on the school's own network. Empty: public only.
TUTOR_ENDPOINT_ALLOWED_HOSTS = env.list("TUTOR_ENDPOINT_ALLOWED_HOSTS", default=[])
if LRS_ENDPOINT:
    # Sends what the after-commit forwarding could not (a broker or LRS outage), every minute.
    CELERY_BEAT_SCHEDULE["statements-forward"] = {
        "task": "apps.learning.tasks.statements_forward",
        "schedule": 60.0,
    }

# --- Serving trained models (apps/serving, docs/models.md "Serving") --------------------------
# The inference pool (`python -m apps.serving.inference`): the web process's one way to run a
# model. The secret proves a request comes from the web; empty: derived from SECRET_KEY.
INFERENCE_URL = env("INFERENCE_URL", default="http://127.0.0.1:8001")
INFERENCE_SECRET = env("INFERENCE_SECRET", default="")
INFERENCE_TIMEOUT_S = env.float("INFERENCE_TIMEOUT_S", default=10.0)
# Sessions kept per pool process: at most this many models and this many bytes of ONNX.
INFERENCE_CACHE_BYTES = env.int("INFERENCE_CACHE_BYTES", default=512 * 1024 * 1024)
INFERENCE_CACHE_MODELS = env.int("INFERENCE_CACHE_MODELS", default=64)
# Requests arriving while a run of their model is in flight wait for it (at most this window) and
# run as one batch of at most this many rows; a request for an idle model runs at once.
INFERENCE_BATCH_WINDOW_MS = env.float("INFERENCE_BATCH_WINDOW_MS", default=2.0)
INFERENCE_MAX_BATCH = env.int("INFERENCE_MAX_BATCH", default=256)
INFERENCE_MAX_REQUEST_BYTES = env.int("INFERENCE_MAX_REQUEST_BYTES", default=64 * 1024 * 1024)
INFERENCE_RUN_THREADS = env.int("INFERENCE_RUN_THREADS", default=2)
INFERENCE_SESSION_THREADS = env.int("INFERENCE_SESSION_THREADS", default=1)
# The prediction API's fast path (apps/serving/fastpath.py): callers Django has answered once
# with a token or key are answered before Django until anything about their access changes.
PREDICT_FAST_PATH = env.bool("PREDICT_FAST_PATH", default=True)
# The prediction API's limits: samples per request, the body (larger than other requests': a
# batch of 256 CIFAR-sized images as JSON numbers is about 5 MB), and encoded bytes and pixels
# per image.
PREDICT_MAX_BATCH = env.int("PREDICT_MAX_BATCH", default=256)
PREDICT_MAX_BODY_BYTES = env.int("PREDICT_MAX_BODY_BYTES", default=8 * 1024 * 1024)
PREDICT_MAX_IMAGE_BYTES = env.int("PREDICT_MAX_IMAGE_BYTES", default=512 * 1024)
PREDICT_MAX_IMAGE_PIXELS = env.int("PREDICT_MAX_IMAGE_PIXELS", default=4096 * 4096)

# A worker whose heartbeat is older than this is reported down by /readyz.
WORKER_HEARTBEAT_INTERVAL = env.float("WORKER_HEARTBEAT_INTERVAL", default=10.0)
WORKER_HEARTBEAT_MAX_AGE = 60.0

# --- Accounts and authentication ------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
INVITATION_TTL = timedelta(days=env.int("INVITATION_TTL_DAYS", default=14))

# Failed logins (page and API alike): 20 for one account lock it for 15 minutes, from every
# address (the keys: the account, and the account at one address); an address alone is never
# locked (a school behind one NAT address), it is throttled (apps/accounts/lockout.py).
AXES_FAILURE_LIMIT = 20
AXES_LOCKOUT_PARAMETERS = ["username", ["username", "ip_address"]]
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_RESET_ON_SUCCESS = True
# Both the login form and the token API call authenticate(username=<email>); axes' default
# (USERNAME_FIELD, "email") would record failures with no account and never lock one.
AXES_USERNAME_FORM_FIELD = "username"
AXES_LOCKOUT_CALLABLE = "apps.accounts.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "apps.accounts.lockout.client_address"
# Failed logins from one address (any accounts) after which its logins answer 429 for the rest
# of the window that its first failure opened.
LOGIN_FAILURES_PER_ADDRESS = env.int("LOGIN_FAILURES_PER_ADDRESS", default=100)
LOGIN_ADDRESS_WINDOW = timedelta(minutes=15)
# Proxies in front that append the client's address to X-Forwarded-For; 0: the header is ignored
# and the connecting address is the client. DRF's throttles read the same number.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_VERBOSE = False

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 14 * 24 * 3600
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Request bodies above this answer 413 before any view runs (apps.core.middleware); the paths
# in REQUEST_BODY_LIMITS have their own. Django's own check sits at the largest of them, so it
# never refuses what the middleware let through.
REQUEST_BODY_MAX_BYTES = 1024 * 1024
# A dataset upload's chunk (PATCH .../upload): a client sends a large file in chunks of at most
# this, resuming from the offset the platform has.
DATASET_UPLOAD_CHUNK_MAX_BYTES = env.int("DATASET_UPLOAD_CHUNK_MAX_BYTES", default=8 * 1024 * 1024)
REQUEST_BODY_LIMITS = {
    r"^/api/v1/t/[^/]+/models/[^/]+/predict$": PREDICT_MAX_BODY_BYTES,
    r"^/api/v1/t/[^/]+/datasets/[^/]+/versions/\d+/upload$": DATASET_UPLOAD_CHUNK_MAX_BYTES,
}
DATA_UPLOAD_MAX_MEMORY_SIZE = max(REQUEST_BODY_MAX_BYTES, *REQUEST_BODY_LIMITS.values())

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "apps.tenants.permissions.TenantMember",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.core.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "apps.core.api.schema.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "login": env("THROTTLE_LOGIN", default="60/min"),
        "invitation": env("THROTTLE_INVITATION", default="30/min"),
        # Prediction requests per model API key (apps/serving).
        "model_key": env("THROTTLE_MODEL_KEY", default="60/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=30),
    "TOKEN_LIMIT_PER_USER": 20,
    "AUTO_REFRESH": False,
    "AUTH_HEADER_PREFIX": "Token",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Aula API",
    "DESCRIPTION": "Courses, model-building exercises, training jobs and grades, per tenant.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "apps.tenants.models.Role",
        "TableKindEnum": "apps.datasets.models.TableKind",
        "SubmissionKindEnum": "apps.jobs.models.SubmissionKind",
    },
}

# --- Email ------------------------------------------------------------------------------------
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Aula <no-reply@aula.localhost>")

# --- I18N, static -----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Trained models' artifacts (ONNX, safetensors), content-addressed under a per-tenant prefix
# (docs/models.md): the filesystem under var/ by default, an S3-compatible bucket when
# ARTIFACTS_S3_BUCKET is set (credentials from the usual AWS_ environment variables).
ARTIFACTS_S3_BUCKET = env.str("ARTIFACTS_S3_BUCKET", default="")
if ARTIFACTS_S3_BUCKET:
    STORAGES["artifacts"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": ARTIFACTS_S3_BUCKET,
            "endpoint_url": env.str("ARTIFACTS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("ARTIFACTS_S3_REGION", default="") or None,
            "location": env.str("ARTIFACTS_S3_PREFIX", default=""),
            "default_acl": None,
            "querystring_auth": True,
            # Content-addressed names: a name is never reused for other bytes.
            "file_overwrite": False,
        },
    }
else:
    STORAGES["artifacts"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": env.str("ARTIFACTS_DIR", default=str(VAR_DIR / "artifacts")),
            "base_url": None,
        },
    }
# Teachers' uploaded datasets (docs/datasets.md): the chunks of uploads and the ingested Arrow
# files, under a per-tenant prefix; the filesystem under var/ by default, an S3-compatible
# bucket when DATASETS_S3_BUCKET is set.
DATASETS_S3_BUCKET = env.str("DATASETS_S3_BUCKET", default="")
if DATASETS_S3_BUCKET:
    STORAGES["datasets"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": DATASETS_S3_BUCKET,
            "endpoint_url": env.str("DATASETS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("DATASETS_S3_REGION", default="") or None,
            "location": env.str("DATASETS_S3_PREFIX", default=""),
            "default_acl": None,
            "file_overwrite": True,
        },
    }
else:
    STORAGES["datasets"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": env.str("DATASETS_DIR", default=str(VAR_DIR / "uploaded-datasets")),
            "base_url": None,
        },
    }
# The largest upload (the ingesters' own limits: docs/datasets.md).
DATASET_UPLOAD_MAX_BYTES = env.int("DATASET_UPLOAD_MAX_BYTES", default=512 * 1024 * 1024)
# Processes an image archive of many files is scanned with (1: in the worker's own process).
DATASET_INGEST_PROCESSES = env.int("DATASET_INGEST_PROCESSES", default=1)
# A worker's local files: the upload joined for ingestion, and ready versions' Arrow files.
DATASET_SCRATCH_DIR = env.str("DATASET_SCRATCH_DIR", default=str(VAR_DIR / "tmp" / "datasets"))
DATASET_CACHE_DIR = env.str("DATASET_CACHE_DIR", default=str(VAR_DIR / "cache" / "datasets"))
# Serve static files straight from static/ and the apps, without collectstatic: DEBUG, and the
# ASGI server the browser tests start.
WHITENOISE_USE_FINDERS = env.bool("STATIC_FROM_SOURCE", default=DEBUG)
WHITENOISE_AUTOREFRESH = WHITENOISE_USE_FINDERS
# Files from npm packages (package.json), served under static/vendor/: onnxruntime-web for the
# try-your-model page (its WebAssembly is about 15 MB; only that page loads it).
NODE_MODULES_DIR = Path(env("NODE_MODULES_DIR", default=str(BASE_DIR / "node_modules")))
NODE_STATIC_FILES = {
    "vendor/onnxruntime-web": (
        "onnxruntime-web/dist",
        ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"],
    ),
}
# The try-your-model page runs a model in the browser when its ONNX file is at most this big,
# else on the inference pool (the prediction API).
TRY_IN_BROWSER_MAX_BYTES = env.int("TRY_IN_BROWSER_MAX_BYTES", default=8 * 1024 * 1024)
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "apps.core.staticfinders.NodePackageFinder",
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

"""Settings for every environment, driven by environment variables (see README)."""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env, envbool, envfloat, envint, envlist

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env("VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = envbool("DEBUG", False)

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string for production, "
            "or DEBUG=1 for local development."
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105

# Exports name annotators and reviewers by an HMAC of their id under this key, apart from
# SECRET_KEY so that rotating the secret does not rename everyone in the exported data.
PSEUDONYM_KEY = env("PSEUDONYM_KEY")
if not PSEUDONYM_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "PSEUDONYM_KEY is not set. Set it to a long random string, kept for the life of "
            "the deployment (it names people in exports), or DEBUG=1 for local development."
        )
    PSEUDONYM_KEY = "dev-only-pseudonym-key"  # noqa: S105

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "annotator",
    "expansion",
    "curation",
    "devtools",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.i18n.UserLanguageMiddleware",
    "config.security.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "config.security.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "annotator.context_processors.roles",
                "expansion.context_processors.llm_mode",
            ],
        },
    },
]

# Database: PostgreSQL in production, a SQLite file under var/ by default.
DATABASE_URL = env("DATABASE_URL")
# On PostgreSQL each process keeps a pool of at most DB_POOL_MAX_SIZE connections, shared by
# its threads: a thread holds one only while it talks to the database (a request, a job's
# claim or progress save), never while a job waits on the LLM, so a worker with 128 threads
# uses DB_POOL_MAX_SIZE connections, not 128. 0 turns the pool off (each thread then opens
# its own connection, kept DB_CONN_MAX_AGE seconds), e.g. behind a pooler such as PgBouncer.
DB_POOL_MAX_SIZE = envint("DB_POOL_MAX_SIZE", 4)
if DATABASE_URL:
    _pooled = DB_POOL_MAX_SIZE > 0 and DATABASE_URL.startswith(("postgres", "pgsql"))
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=0 if _pooled else envint("DB_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        )
    }
    if _pooled:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DB_POOL_MAX_SIZE,
            # A thread waits this long for a free connection, then gets an OperationalError
            # (a job's database calls ride it out like any database blip).
            "timeout": envint("DB_POOL_TIMEOUT", 10),
        }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            "OPTIONS": {
                # WAL lets readers proceed while one writer writes; IMMEDIATE transactions
                # take the write lock up front, so concurrent writers queue on the busy
                # timeout instead of failing with "database is locked" mid-transaction.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # A file rather than shared memory, so that tests with several threads see the
            # same locking (WAL, busy timeout) as the real thing.
            "TEST": {"NAME": str(VAR_DIR / "test-db.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis is the Celery broker and the shared state between processes when configured;
# otherwise a filesystem broker and a file cache under var/ need no server.
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    # The filesystem transport has no broadcast, which remote control needs.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Each worker process reserves this many tasks per thread. With late acks a reserved task
# counts until it finishes, and a threads-pool worker asks the broker for more only once per
# cycle of its loop (up to 2 s): with 1, a process whose jobs all end together sat idle
# until the next fetch (23 of 32 slots busy at 3.5 s answers, bench/expansion.py); with 2,
# the next jobs are already there (31.3 of 32).
CELERY_WORKER_PREFETCH_MULTIPLIER = envint("CELERY_WORKER_PREFETCH_MULTIPLIER", 2)
CELERY_TASK_IGNORE_RESULT = True
# One result backend per process rather than one per thread: building it scans the installed
# packages' entry points (tens of milliseconds), which each of a worker's hundreds of threads
# would otherwise do on its first task. No result is stored (the backend is disabled).
CELERY_RESULT_BACKEND_THREAD_SAFE = True
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ROUTES = {
    "expansion.tasks.expand_trace": {"queue": "expansion"},
    "curation.tasks.judge_steps": {"queue": "expansion"},
    "expansion.tasks.rollout_sample": {"queue": "expansion"},  # LLM calls: the I/O-bound workers
}
# Analytics figures older than this are recomputed in the background (pages say how old
# they are); the default dashboard is recomputed on this interval by the beat schedule.
ANALYTICS_CACHE_SECONDS = envint("ANALYTICS_CACHE_SECONDS", 60)
CELERY_BEAT_SCHEDULE = {
    "requeue-stalled-traces": {
        "task": "expansion.tasks.requeue_stalled_traces",
        "schedule": float(envint("EXPANSION_SWEEP_SECONDS", 60)),
    },
    "requeue-stalled-rollout-samples": {
        "task": "expansion.tasks.requeue_stalled_rollout_samples",
        "schedule": float(envint("EXPANSION_SWEEP_SECONDS", 60)),
    },
    "queue-missing-expansions": {
        "task": "expansion.tasks.queue_missing_expansions",
        "schedule": float(envint("EXPANSION_SWEEP_SECONDS", 60)),
    },
    "poll-llm-batches": {
        "task": "expansion.tasks.poll_batches",
        "schedule": float(envint("LLM_BATCH_POLL_SECONDS", 60)),
    },
    "recheck-timed-out-answers": {
        "task": "expansion.tasks.recheck_answers",
        "schedule": 300.0,
    },
    "requeue-stalled-judge-jobs": {
        "task": "curation.tasks.requeue_stalled_judge_jobs",
        "schedule": float(envint("EXPANSION_SWEEP_SECONDS", 60)),
    },
    "fail-stalled-exports": {
        "task": "curation.tasks.fail_stalled_exports",
        "schedule": 60.0,
    },
    "refresh-trace-norms": {
        "task": "expansion.tasks.refresh_norms",
        "schedule": float(max(envint("TRACE_NORMS_SECONDS", 300), 10)),
    },
    "refresh-default-analytics": {
        "task": "curation.analytics.tasks.refresh_default_figures",
        "schedule": float(max(ANALYTICS_CACHE_SECONDS, 10)),
    },
}

# The default LLM endpoint. The key is read from the environment at call time and is
# never written to the database.
LLM_BASE_URL = env("LLM_BASE_URL")
LLM_MODEL = env("LLM_MODEL")
LLM_API_KEY_ENV = "LLM_API_KEY" if env("LLM_API_KEY") else "OPENAI_API_KEY"
env("OPENAI_API_KEY")
# The only variables an endpoint may name for its key (checked on save and before each call).
LLM_API_KEY_NAMES = frozenset(["LLM_API_KEY", "OPENAI_API_KEY", *envlist("LLM_API_KEY_NAMES")])
# Used when no real endpoint is configured: the simulated server (manage.py llm_simulator).
LLM_SIMULATOR_URL = env("LLM_SIMULATOR_URL", "http://127.0.0.1:8808/v1")
# The automatic checks' thresholds (README, "Check flags"): each flag and what changes it.
CHECK_LOW_COVERAGE = envfloat("CHECK_LOW_COVERAGE", 0.8)  # mean step coverage under this
CHECK_REPETITION_NGRAM = envint("CHECK_REPETITION_NGRAM", 20)  # tokens of a repeated n-gram
CHECK_REPETITION_NGRAM_MAX = envint("CHECK_REPETITION_NGRAM_MAX", 10)  # occurrences allowed
CHECK_REPETITION_LINE_MAX = envint("CHECK_REPETITION_LINE_MAX", 10)  # of one line
CHECK_REFLECTION_FLOOR = envfloat("CHECK_REFLECTION_FLOOR", 0.25)  # x the prompt's median
CHECK_OVERTHINKING_FACTOR = envfloat("CHECK_OVERTHINKING_FACTOR", 3.0)  # x a median (README)
CHECK_NORM_MIN_TRACES = envint("CHECK_NORM_MIN_TRACES", 20)  # traces behind a median
# Overthinking with a difficulty campaign: traces grouped by pass rate in this many ranges.
CHECK_PASS_RATE_BUCKETS = envint("CHECK_PASS_RATE_BUCKETS", 5)
# Rollouts: a problem's reference answer is disputed when at least this many samples were
# verified and at least this share of them agree on one answer no correct sample gave.
ROLLOUT_DISPUTE_MIN_SAMPLES = envint("ROLLOUT_DISPUTE_MIN_SAMPLES", 8)
ROLLOUT_DISPUTE_MAJORITY = envfloat("ROLLOUT_DISPUTE_MAJORITY", 0.6)
# A succeeded sample still unverified after this long (its worker stopped between the
# answer and the verdict) is verified by the requeue task; figures that missed a verdict
# are recomputed by it too.
ROLLOUT_VERIFY_CATCH_UP_SECONDS = envint("ROLLOUT_VERIFY_CATCH_UP_SECONDS", 60)
EXPANSION_SAMPLES = envint("EXPANSION_SAMPLES", 1)  # traces queued per submitted annotation
EXPANSION_MAX_ATTEMPTS = envint("EXPANSION_MAX_ATTEMPTS", 5)
EXPANSION_HEARTBEAT_STALE_SECONDS = envint("EXPANSION_HEARTBEAT_STALE_SECONDS", 120)
# Progress saves a worker process makes per second at most, over all the answers streaming
# into it: each answer's saves come every 2 s, or less often when more answers stream in
# (at most every 10 s). See expansion/jobs/engine.py.
EXPANSION_PROGRESS_SAVES_PER_SECOND = envint("EXPANSION_PROGRESS_SAVES_PER_SECOND", 16)
if EXPANSION_PROGRESS_SAVES_PER_SECOND < 1:
    raise ImproperlyConfigured(
        "EXPANSION_PROGRESS_SAVES_PER_SECOND must be at least 1, got "
        f"{EXPANSION_PROGRESS_SAVES_PER_SECOND}"
    )
# A queued job whose last message is this old is sent again (the broker may have lost it,
# or it sits unacknowledged with a dead worker until the visibility timeout); each further
# message waits twice as long, up to EXPANSION_REQUEUE_QUEUED_AFTER_SECONDS. A duplicate
# message is harmless: the claim takes a job once.
EXPANSION_RESEND_AFTER_SECONDS = envint("EXPANSION_RESEND_AFTER_SECONDS", 90)
EXPANSION_REQUEUE_QUEUED_AFTER_SECONDS = envint("EXPANSION_REQUEUE_QUEUED_AFTER_SECONDS", 900)
# How long a job's database calls are tried again through a database blip before the task
# retries itself (this many seconds later); the save of a received answer, ten times as long.
EXPANSION_DB_RETRY_SECONDS = envint("EXPANSION_DB_RETRY_SECONDS", 15)
# Endpoints marked "use batches": their queued jobs are sent as one batch, and the live
# batches polled, every LLM_BATCH_POLL_SECONDS (the beat task poll-llm-batches); at most
# LLM_BATCH_MAX_REQUESTS jobs per batch (OpenAI takes 50,000); a job that a batch did not
# answer (expired, cancelled, a failed line) goes into the next batch, at most
# LLM_BATCH_MAX_ATTEMPTS batches in all, then fails with the reason.
LLM_BATCH_POLL_SECONDS = envint("LLM_BATCH_POLL_SECONDS", 60)
LLM_BATCH_MAX_REQUESTS = envint("LLM_BATCH_MAX_REQUESTS", 10000)
LLM_BATCH_MAX_ATTEMPTS = envint("LLM_BATCH_MAX_ATTEMPTS", 3)
# A poller leases a batch this long while it polls and ingests it (renewed as it goes).
LLM_BATCH_LEASE_SECONDS = envint("LLM_BATCH_LEASE_SECONDS", 300)
REVIEW_APPROVALS_REQUIRED = envint("REVIEW_APPROVALS_REQUIRED", 1)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# The interface speaks English or Simplified Chinese: the user's choice (the picker in the
# header), else the browser's Accept-Language, else English (see config/i18n.py and README).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if envbool("STATIC_MANIFEST", not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024)

# API tokens are kept hashed and expire after this many days (POST /api/auth/token/ again).
API_TOKEN_DAYS = envint("API_TOKEN_DAYS", 30)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so that an anonymous request gets 401 with a WWW-Authenticate header.
        "annotator.tokens.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api_errors.api_exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "config.api_errors.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["rest_framework.filters.OrderingFilter"],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("THROTTLE_ANON", "60/min"),
        "user": env("THROTTLE_USER", "6000/min"),
        "auth": env("THROTTLE_AUTH", "10/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Journey annotation platform API",
    "DESCRIPTION": "Problems, annotations, expansions, reviews and exports.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "AnnotationStatusEnum": "annotator.models.Annotation.Status",
        "TraceStatusEnum": "expansion.models.Trace.Status",
        "AnswerCheckEnum": "annotator.models.Annotation.AnswerCheck",
        "ErrorKindEnum": "expansion.models.Trace.ErrorKind",
    },
}

# Production hardening: everything `manage.py check --deploy` asks for when DEBUG is off.
_ssl_redirect = envbool("SECURE_SSL_REDIRECT", True)
_hsts_seconds = envint("SECURE_HSTS_SECONDS", 31536000)
_trust_forwarded_proto = envbool("TRUST_X_FORWARDED_PROTO", False)
# Behind a proxy every request comes from the proxy's address: take the client's from the
# X-Forwarded-For entry the proxy appended (login limits and API throttles), and otherwise
# ignore that header, which any client can write.
TRUST_X_FORWARDED_FOR = envbool("TRUST_X_FORWARDED_FOR", False)
REST_FRAMEWORK["NUM_PROXIES"] = 1 if TRUST_X_FORWARDED_FOR else 0
if not DEBUG:
    SECURE_SSL_REDIRECT = _ssl_redirect
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = _hsts_seconds
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
if _trust_forwarded_proto:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
}

# Work rules (see README).
ANNOTATION_LEASE_MINUTES = envint("ANNOTATION_LEASE_MINUTES", 120)
ANNOTATIONS_PER_PROBLEM = envint("ANNOTATIONS_PER_PROBLEM", 1)

# Data hygiene (see README): benchmark decontamination and near-duplicate problems.
DECONTAMINATION_NGRAM = envint("DECONTAMINATION_NGRAM", 8)  # words per n-gram, as s1/OpenR1
NEAR_DUPLICATE_THRESHOLD = envfloat("NEAR_DUPLICATE_THRESHOLD", 0.8)  # Jaccard of shingles
NEAR_DUPLICATE_SHINGLE = envint("NEAR_DUPLICATE_SHINGLE", 3)  # words per shingle

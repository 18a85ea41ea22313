"""A shop's Django settings, as its docs ask, pointed at the bench's Daraja simulator.

Environment: PEER_DB (SQLite file), PEER_DARAJA_URL (the simulator), PEER_URL (where Daraja
reaches this shop's callback).
"""

import os

SECRET_KEY = "bench-peer-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "rest_framework",
    "django_mpesa",
    "peer_shop",
]
MIDDLEWARE = ["django_mpesa.middleware.MpesaCallbackIPAllowlistMiddleware"]
ROOT_URLCONF = "peer_shop.urls"
WSGI_APPLICATION = "peer_shop.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("PEER_DB", "peer.sqlite3"),
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}

MPESA = {
    "ENV": "sandbox",
    "CONSUMER_KEY": "sim-consumer-key",
    "CONSUMER_SECRET": "sim-consumer-secret",
    "SHORTCODE": "174379",
    "PASSKEY": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
    "STK_CALLBACK_URL": os.environ.get("PEER_URL", "http://127.0.0.1:8200")
    + "/mpesa/stk/callback/",
    "USE_CELERY": False,
    # The peer trusts callbacks by source address; here Daraja is on loopback.
    "CALLBACK_IP_ALLOWLIST": ["127.0.0.1"],
    "TRANSACTION_MODEL": "peer_shop.MpesaTransaction",
    "CALLBACK_LOG_MODEL": "peer_shop.MpesaCallbackLog",
}
DARAJA_URL = os.environ.get("PEER_DARAJA_URL", "http://127.0.0.1:8100")  # see apps.py

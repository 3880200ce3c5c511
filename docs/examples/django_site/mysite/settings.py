"""mysite/settings.py: the least a Django project needs, and the health app."""

SECRET_KEY = "change-me"  # from your secrets in a real project
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS = [
    "health_middleware.django",  # checks every database and cache, and the migrations
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
HEALTH_MIDDLEWARE = {"options": {"service_id": "mysite", "version": "1.4.2"}}

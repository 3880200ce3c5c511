"""mysite/asgi.py: uvicorn mysite.asgi:application"""

import os

from django.core.asgi import get_asgi_application

from health_middleware.django import asgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
application = asgi(get_asgi_application())
